/**
 * Guard factories (P4 every-route-guarded; the identity pre-check that lets the router refuse
 * a caller before reading the body: issue "authorisation before body validation").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeId } from '../spiffe/id.js';
import { anyOf, denyAll, guardBody, guardIdentity, isGuard } from './guards.js';
import { RouteDefinitionError, defineRoute } from './route.js';
import { s } from './schema.js';

const a = SpiffeId.parse('spiffe://spike.ist/app/a');
const b = SpiffeId.parse('spiffe://spike.ist/app/b');

test('guardIdentity: the pre-check is the whole check', () => {
  const g = guardIdentity('only-a', (p) => p.equals(a));
  assert.ok(isGuard(g));
  assert.equal(g.identityOnly, true);
  assert.equal(g.admits(a), true);
  assert.equal(g.admits(b), false);
  assert.equal(g.check(a, { anything: 1 }), true);
  assert.equal(g.check(b, undefined), false);
});

test('guardBody: needs an identity pre-check (type error and run-time error without one); the full check implies it', () => {
  // @ts-expect-error — a body guard without its identity pre-check does not compile
  assert.throws(() => guardBody<{ path: string }>('x', (_p: SpiffeId, body: { path: string }) => body.path === 'ok'), TypeError);
  // @ts-expect-error — `admits` is required
  assert.throws(() => guardBody<{ path: string }>('x', { allow: () => true }), TypeError);
  const g = guardBody<{ path: string }>('path', { admits: (p) => p.equals(a), allow: (_p, body) => body.path === 'ok' });
  assert.equal(g.identityOnly, false);
  assert.equal(g.admits(a), true);
  assert.equal(g.admits(b), false);
  assert.equal(g.check(a, { path: 'ok' }), true);
  assert.equal(g.check(a, { path: 'no' }), false);
  // An `allow` that would let b in cannot: the pre-check is part of the full check.
  const sloppy = guardBody<{ path: string }>('sloppy', { admits: (p) => p.equals(a), allow: () => true });
  assert.equal(sloppy.check(b, { path: 'ok' }), false);
});

test('denyAll and anyOf carry pre-checks', () => {
  assert.equal(denyAll().admits(a), false);
  const body = guardBody<{ path: string }>('path', { admits: (p) => p.equals(a), allow: () => true });
  const either = anyOf<{ path: string }>('either', body, guardIdentity('b', (p) => p.equals(b)));
  assert.equal(either.admits(a), true);
  assert.equal(either.admits(b), true);
  assert.equal(either.admits(SpiffeId.parse('spiffe://spike.ist/app/c')), false);
  assert.equal(either.identityOnly, false);
  assert.equal(anyOf('ids', guardIdentity('a', () => false), denyAll()).identityOnly, true);
});

test('a stream variant (authorised before any body exists) refuses a body guard', () => {
  const body = guardBody<unknown>('body', { admits: () => true, allow: () => true });
  assert.throws(
    () => defineRoute({ path: '/s', body: s.empty(), guard: denyAll(), handle: () => ({}), stream: { guard: body, maxBodyBytes: 1, handle: () => new Uint8Array(0) } }),
    RouteDefinitionError,
  );
});
