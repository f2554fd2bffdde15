/**
 * Incremental engine updates (issue 17, POL-17): one policy put or delete applied to the
 * engine alone must leave it deciding exactly as an engine rebuilt from scratch from the same
 * set, whatever the sequence and whatever the caller cache held; and a change is refused
 * (caller reloads) whenever it cannot be proven to be the only one since the loaded set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pathArb, peerArb, permArb, pol, policyArb, reference } from '../../../test/helpers/policy-fixtures.js';
import { type PolicyChange, type PolicyLike, PolicyEngine } from './index.js';

const nameArb = fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5');
const changeArb: fc.Arbitrary<PolicyChange> = fc.oneof(
  { weight: 3, arbitrary: policyArb.map((policy): PolicyChange => ({ kind: 'put', policy })) },
  { weight: 2, arbitrary: nameArb.map((name): PolicyChange => ({ kind: 'delete', name })) },
);
const queryArb = fc.tuple(peerArb, pathArb, permArb);

test('issue 17 (property): after any sequence of puts/deletes the incremental engine equals one rebuilt from scratch', () => {
  fc.assert(
    fc.property(
      fc.array(policyArb, { maxLength: 4 }),
      fc.array(changeArb, { minLength: 1, maxLength: 12 }),
      fc.array(queryArb, { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 6 }),
      (initial, changes, queries, cacheSize) => {
        const set = new Map<string, PolicyLike>(initial.map((p) => [p.name, p]));
        const engine = new PolicyEngine({ callerCacheSize: cacheSize });
        engine.load([...set.values()], 10);
        const check = (): void => {
          const fresh = new PolicyEngine();
          fresh.load([...set.values()], 0);
          assert.equal(engine.size, fresh.size);
          for (const [peer, path, perm] of queries) {
            const got = engine.allows(peer, path, perm);
            assert.equal(got, fresh.allows(peer, path, perm), JSON.stringify({ set: [...set.values()], peer, path, perm }));
            assert.equal(got, reference([...set.values()], peer, path, perm));
            assert.equal(engine.grantsAnywhere(peer, perm), fresh.grantsAnywhere(peer, perm));
            assert.deepEqual(engine.policiesFor(peer).sort(), fresh.policiesFor(peer).sort());
          }
        };
        check(); // also warms the caller cache, so every change below must invalidate it right
        for (const change of changes) {
          const base = engine.changeBase();
          assert.notEqual(base, null);
          assert.equal(engine.apply(change, base, (base as number) + 1), true);
          if (change.kind === 'put') set.set(change.policy.name, change.policy);
          else set.delete(change.name);
          check();
        }
        assert.equal(engine.generation, 10 + changes.length);
      },
    ),
    { numRuns: 600 },
  );
});

test('POL-17: a delete applied incrementally denies at the very next decision, for warm and cold callers', () => {
  const w = 'spiffe://t/w';
  const engine = new PolicyEngine({ callerCacheSize: 4 });
  engine.load([pol('lit', w, 'a/.*', ['read']), pol('re', 'spiffe://t/.*', 'b/.*', ['read'])], 1);
  assert.equal(engine.allows(w, 'a/x', 'read'), true);
  assert.equal(engine.allows(w, 'b/x', 'read'), true);
  assert.equal(engine.apply({ kind: 'delete', name: 'lit' }, 1, 2), true);
  assert.equal(engine.allows(w, 'a/x', 'read'), false, 'stale allow after a literal-identity delete');
  assert.equal(engine.apply({ kind: 'delete', name: 're' }, 2, 3), true);
  assert.equal(engine.allows(w, 'b/x', 'read'), false, 'stale allow after a regex-identity delete');
  assert.equal(engine.allows('spiffe://t/other', 'b/x', 'read'), false);
  // narrowing by put replaces, never adds
  assert.equal(engine.apply({ kind: 'put', policy: pol('n', w, 'c/.*', ['read', 'write']) }, 3, 4), true);
  assert.equal(engine.allows(w, 'c/x', 'write'), true);
  assert.equal(engine.apply({ kind: 'put', policy: pol('n', w, 'c/.*', ['read']) }, 4, 5), true);
  assert.equal(engine.allows(w, 'c/x', 'write'), false);
  assert.equal(engine.size, 1);
});

test('a change that is not provably the only one since the loaded set is refused (the caller reloads)', () => {
  const w = 'spiffe://t/w';
  const put: PolicyChange = { kind: 'put', policy: pol('x', w, '.*', ['super']) };
  const engine = new PolicyEngine();
  assert.equal(engine.changeBase(), null, 'nothing loaded yet');
  engine.load([pol('p', w, 'a', ['read'])], 5);
  assert.equal(engine.changeBase(), 5);
  // another writer committed in between: the store is two generations further
  assert.equal(engine.apply(put, 5, 7), false);
  // the engine moved since the base was read
  assert.equal(engine.apply(put, 4, 5), false);
  assert.equal(engine.apply(put, null, 6), false);
  assert.equal(engine.allows(w, 'b', 'read'), false, 'a refused change must change nothing');
  assert.equal(engine.generation, 5);
  // emptied to fail closed (a load that does not move the generation): no longer exact
  engine.load([], 5);
  assert.equal(engine.changeBase(), null);
  assert.equal(engine.apply(put, 5, 6), false);
  assert.equal(engine.allows(w, 'a', 'read'), false);
  // a load at a newer generation makes it exact again
  engine.load([pol('p', w, 'a', ['read'])], 6);
  assert.equal(engine.changeBase(), 6);
  assert.equal(engine.apply(put, 6, 7), true);
  assert.equal(engine.allows(w, 'b', 'read'), true);
});

test('a put of a policy that grants nothing removes the old one and adds nothing', () => {
  const w = 'spiffe://t/w';
  const engine = new PolicyEngine();
  engine.load([pol('p', w, 'a', ['read'])], 1);
  assert.equal(engine.allows(w, 'a', 'read'), true);
  assert.equal(engine.apply({ kind: 'put', policy: pol('p', w, 'a', ['legacy-unknown']) }, 1, 2), true);
  assert.equal(engine.allows(w, 'a', 'read'), false);
  assert.equal(engine.size, 0);
});

test('attack-rollback-stale-policies: an older generation is taken only by a read that began after the engine last changed (a store that went back), never by a slow reader', () => {
  const w = 'spiffe://t/w';
  const engine = new PolicyEngine();
  engine.load([pol('p', w, 'a', ['read'])], 5);
  const slow = engine.changeCount; // a reload whose reads began here …
  assert.equal(engine.apply({ kind: 'delete', name: 'p' }, 5, 6), true); // … then a delete was applied
  assert.equal(engine.load([pol('p', w, 'a', ['read'])], 5, slow).applied, false, 'the slow reader cannot bring the deleted policy back');
  assert.equal(engine.allows(w, 'a', 'read'), false);
  assert.equal(engine.load([pol('q', w, 'b', ['read'])], 2).applied, false, 'an older load that says nothing about its read is ignored');
  const fresh = engine.changeCount;
  assert.equal(engine.load([pol('q', w, 'b', ['read'])], 2, fresh).applied, true, 'the store went back: its set is taken');
  assert.equal(engine.generation, 2);
  assert.equal(engine.allows(w, 'b', 'read'), true);
  assert.equal(engine.changeBase(), 2, 'exact: a write after it applies incrementally');
  assert.equal(engine.apply({ kind: 'delete', name: 'q' }, 2, 3), true);
  assert.equal(engine.allows(w, 'b', 'read'), false);
});
