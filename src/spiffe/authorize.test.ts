import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeAll, authorizeAny, authorizeId, authorizeIf, authorizeMemberOf, authorizeOneOf, authorizeSome } from './authorize.js';
import { SpiffeId, TrustDomain } from './id.js';

const id = (s: string) => SpiffeId.parse(s);
const nexus = id('spiffe://td1.test/spike/nexus');

test('authorizeAny accepts every ID', () => {
  assert.ok(authorizeAny()(nexus));
});

test('TLS-16: authorizeId matches exactly, never by prefix', () => {
  const a = authorizeId(nexus);
  assert.ok(a(id('spiffe://td1.test/spike/nexus')));
  for (const s of ['spiffe://td1.test/spike/nexusx', 'spiffe://td1.test/spike/nexus/child', 'spiffe://td1.test/spike', 'spiffe://td2.test/spike/nexus', 'spiffe://td1.test/spike/Nexus']) {
    assert.ok(!a(id(s)), s);
  }
});

test('authorizeOneOf accepts only listed IDs', () => {
  const a = authorizeOneOf(nexus, id('spiffe://td1.test/spike/bootstrap'));
  assert.ok(a(id('spiffe://td1.test/spike/bootstrap')));
  assert.ok(!a(id('spiffe://td1.test/spike/keeper')));
  assert.ok(!authorizeOneOf()(nexus));
});

test('TLS-03: authorizeMemberOf checks the trust domain exactly', () => {
  const a = authorizeMemberOf(TrustDomain.parse('td1.test'));
  assert.ok(a(nexus));
  assert.ok(!a(id('spiffe://td2.test/spike/nexus')));
  assert.ok(!a(id('spiffe://td1.test.evil/spike/nexus')));
});

test('authorizeIf requires exactly true and denies when the predicate throws', () => {
  assert.ok(authorizeIf((x) => x.path.startsWith('/spike/'))(nexus));
  assert.ok(!authorizeIf(() => 1 as unknown as boolean)(nexus));
  assert.ok(
    !authorizeIf(() => {
      throw new Error('boom');
    })(nexus),
  );
});

test('authorizeAll / authorizeSome compose', () => {
  const td = authorizeMemberOf(TrustDomain.parse('td1.test'));
  const exact = authorizeId(nexus);
  assert.ok(authorizeAll(td, exact)(nexus));
  assert.ok(!authorizeAll(td, exact)(id('spiffe://td1.test/x')));
  assert.ok(!authorizeAll()(nexus));
  assert.ok(authorizeSome(exact, td)(id('spiffe://td1.test/x')));
  assert.ok(!authorizeSome()(nexus));
});
