/**
 * The secret model against an independent, deliberately naive restatement of the rules
 * (arrays and loops, no shared code), over random operation sequences (fast-check), plus
 * direct cases for the SPIKE bugs it must not reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  applyDelete, applyDestroy, applyPut, applyUndelete, isConsistentState, resolveReadVersion, toMetadata,
  type SecretState,
} from './model.js';
import { StoreError } from './types.js';

/** Reference: a list of {v, deleted}; rules written from SPIKE's secret API plus our fixes (gaps B2, B19). */
interface Ref { last: number; max: number; vs: { v: number; deleted: boolean }[] }

function refCurrent(r: Ref): number {
  return Math.max(0, ...r.vs.filter((x) => !x.deleted).map((x) => x.v));
}
function refOldest(r: Ref): number {
  const live = r.vs.filter((x) => !x.deleted).map((x) => x.v);
  return live.length ? Math.min(...live) : 0;
}
function refTargets(list: number[], zero: number): number[] {
  const src = list.length === 0 ? [0] : list;
  return [...new Set(src.filter((v) => Number.isSafeInteger(v) && v >= 0).map((v) => (v === 0 ? zero : v)).filter((v) => v > 0))];
}

type Op =
  | { t: 'put'; max?: number; cas?: number }
  | { t: 'del'; vs: number[] }
  | { t: 'undel'; vs: number[] }
  | { t: 'destroy'; vs: number[] };

const versionList = fc.array(fc.integer({ min: -1, max: 12 }), { maxLength: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('put' as const), max: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }), cas: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }) }, { requiredKeys: ['t'] }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), vs: versionList }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('undel' as const), vs: versionList }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('destroy' as const), vs: versionList }) },
);

test('SEC-14 (model level): random put/delete/undelete/destroy sequences agree with the reference rules', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
      let state: SecretState | null = null;
      let ref: Ref | null = null;
      let t = 0;
      for (const op of ops) {
        const now = new Date(++t * 1000);
        if (op.t === 'put') {
          const opts = { ...(op.max !== undefined ? { maxVersions: op.max } : {}), ...(op.cas !== undefined ? { cas: op.cas } : {}) };
          const refLast = ref ? ref.last : 0;
          const casOk = op.cas === undefined || (ref === null ? op.cas === 0 : op.cas === refLast);
          if (!casOk) {
            assert.throws(() => applyPut(state, opts, 3, now), (e: unknown) => e instanceof StoreError && e.code === 'store_cas_mismatch');
            continue;
          }
          const r = applyPut(state, opts, 3, now);
          if (!ref) ref = { last: 0, max: op.max ?? 3, vs: [] };
          else if (op.max !== undefined) ref.max = op.max;
          const nv: number = ref.last + 1;
          ref.last = nv;
          ref.vs.push({ v: nv, deleted: false });
          ref.vs.sort((a, b) => a.v - b.v);
          const pruned: number[] = [];
          while (ref.vs.length > ref.max) pruned.push(ref.vs.shift()!.v);
          assert.equal(r.version, nv);
          assert.deepEqual([...r.pruned].sort((a, b) => a - b), pruned);
          state = r.state;
        } else {
          if (!state || !ref) continue;
          const r = ref;
          let expectChanged: number[];
          if (op.t === 'del') {
            expectChanged = refTargets(op.vs, refCurrent(r)).filter((v) => r.vs.some((x) => x.v === v && !x.deleted));
            for (const x of r.vs) if (expectChanged.includes(x.v)) x.deleted = true;
            const res = applyDelete(state, op.vs, now);
            assert.deepEqual(res.changed, [...expectChanged].sort((a, b) => a - b));
            state = res.state;
          } else if (op.t === 'undel') {
            const highestDeleted = Math.max(0, ...r.vs.filter((x) => x.deleted).map((x) => x.v));
            expectChanged = refTargets(op.vs, highestDeleted).filter((v) => r.vs.some((x) => x.v === v && x.deleted));
            for (const x of r.vs) if (expectChanged.includes(x.v)) x.deleted = false;
            const res = applyUndelete(state, op.vs, now);
            assert.deepEqual(res.changed, [...expectChanged].sort((a, b) => a - b));
            state = res.state;
          } else {
            expectChanged = refTargets(op.vs, refCurrent(r)).filter((v) => r.vs.some((x) => x.v === v));
            r.vs = r.vs.filter((x) => !expectChanged.includes(x.v));
            const res = applyDestroy(state, op.vs, now);
            assert.deepEqual(res.changed, [...expectChanged].sort((a, b) => a - b));
            state = res.state;
          }
        }
        // Invariants after every step.
        assert.ok(state && ref);
        assert.ok(isConsistentState(state));
        const md = toMetadata(state);
        assert.equal(md.metadata.currentVersion, refCurrent(ref));
        assert.equal(md.metadata.oldestVersion, refOldest(ref));
        assert.equal(md.metadata.lastVersion, ref.last);
        assert.deepEqual(md.versions.map((v) => [v.version, v.deletedTime !== null]), ref.vs.map((x) => [x.v, x.deleted]));
        assert.ok(md.versions.length <= md.metadata.maxVersions);
        for (let v = 0; v <= ref.last + 1; v++) {
          const live = ref.vs.some((x) => x.v === v && !x.deleted);
          const expected: number | null = v === 0 ? (refCurrent(ref) || null) : live ? v : null;
          assert.equal(resolveReadVersion(state, v), expected);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('model: pure — inputs are never mutated', () => {
  const a = applyPut(null, {}, 10, new Date(1000)).state;
  const snapshot = JSON.stringify(toMetadata(a));
  applyPut(a, {}, 10, new Date(2000));
  applyDelete(a, [], new Date(3000));
  applyDestroy(a, [1], new Date(4000));
  assert.equal(JSON.stringify(toMetadata(a)), snapshot);
});

test('model: read rules of SPIKE\'s secret get (unknown path, all deleted, missing, deleted, bad numbers → null)', () => {
  assert.equal(resolveReadVersion(null), null);
  let s = applyPut(null, {}, 10, new Date(1)).state;
  s = applyPut(s, {}, 10, new Date(2)).state;
  assert.equal(resolveReadVersion(s), 2);
  assert.equal(resolveReadVersion(s, 1), 1);
  assert.equal(resolveReadVersion(s, 3), null);
  assert.equal(resolveReadVersion(s, -1), null);
  assert.equal(resolveReadVersion(s, 1.5), null);
  s = applyDelete(s, [2], new Date(3)).state;
  assert.equal(resolveReadVersion(s, 2), null);
  assert.equal(resolveReadVersion(s), 1);
  s = applyDelete(s, [1], new Date(4)).state;
  assert.equal(resolveReadVersion(s), null);
  assert.equal(s.meta.currentVersion, 0);
});

test('model: cas and maxVersions arguments are validated', () => {
  const bad = (e: unknown): boolean => e instanceof StoreError && e.code === 'store_invalid_argument';
  assert.throws(() => applyPut(null, { cas: -1 }, 10, new Date(1)), bad);
  assert.throws(() => applyPut(null, { cas: 0.5 }, 10, new Date(1)), bad);
  assert.throws(() => applyPut(null, { maxVersions: 0 }, 10, new Date(1)), bad);
  assert.throws(() => applyPut(null, { maxVersions: Number.NaN }, 10, new Date(1)), bad);
});

test('model: isConsistentState rejects states this code never writes', () => {
  const s = applyPut(null, {}, 10, new Date(1)).state;
  assert.ok(isConsistentState(s));
  assert.equal(isConsistentState({ ...s, meta: { ...s.meta, currentVersion: 5 } }), false);
  assert.equal(isConsistentState({ ...s, meta: { ...s.meta, lastVersion: 0 } }), false);
  assert.equal(isConsistentState({ ...s, meta: { ...s.meta, maxVersions: 0 } }), false);
});

test('maxVersions ceiling: the operator ceiling clamps a requested and a stored maxVersions on every put', () => {
  const t = new Date(1);
  const bad = (e: unknown): boolean => e instanceof StoreError && e.code === 'store_invalid_argument';
  assert.throws(() => applyPut(null, { maxVersionsCeiling: 0 }, 10, t), bad);
  assert.throws(() => applyPut(null, { maxVersionsCeiling: 1.5 }, 10, t), bad);
  // A writer asks for 50 under a ceiling of 3: 3 are kept, and the metadata says 3.
  let s: SecretState | null = null;
  const pruned: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = applyPut(s, { maxVersions: 50, maxVersionsCeiling: 3 }, 3, t);
    s = r.state;
    pruned.push(...r.pruned);
  }
  assert.equal(s!.meta.maxVersions, 3);
  assert.deepEqual([...s!.versions.keys()].sort((a, b) => a - b), [4, 5, 6]);
  assert.deepEqual(pruned, [1, 2, 3]);
  // Below the ceiling the writer's choice stands, and persists across puts that omit it.
  s = applyPut(s, { maxVersions: 2, maxVersionsCeiling: 3 }, 3, t).state;
  s = applyPut(s, { maxVersionsCeiling: 3 }, 3, t).state;
  assert.equal(s.meta.maxVersions, 2);
  assert.deepEqual([...s.versions.keys()].sort((a, b) => a - b), [7, 8]);
  // A secret stored with 50 before the operator lowered the ceiling: the next put clamps and prunes.
  let old: SecretState | null = null;
  for (let i = 0; i < 8; i++) old = applyPut(old, { maxVersions: 50 }, 10, t).state;
  assert.equal(old!.meta.maxVersions, 50);
  const r = applyPut(old, { maxVersionsCeiling: 4 }, 4, t);
  assert.equal(r.state.meta.maxVersions, 4);
  assert.deepEqual(r.pruned, [1, 2, 3, 4, 5]);
  assert.ok(isConsistentState(r.state));
  // No ceiling given (store used directly): unchanged behaviour.
  assert.equal(applyPut(null, { maxVersions: 50 }, 10, t).state.meta.maxVersions, 50);
});
