/**
 * Property tests for the refresh math the sharing move relies on: a new sharing of the
 * same root key (fresh polynomial, same constant term) — any t shares of the new epoch
 * rebuild the same key, for a refresh and for a reshare to (n', t'); a set of t shares that
 * mixes epochs never rebuilds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { combineShares, RootKey, splitSecret, type Share } from '../../crypto/index.js';

/** `t` distinct indexes of 0..n-1, from a random permutation key. */
function pick(n: number, t: number, order: number[]): number[] {
  return [...Array(n).keys()].sort((a, b) => (order[a % order.length]! - order[b % order.length]!) || a - b).slice(0, t);
}

const sharingArb = fc.integer({ min: 1, max: 7 }).chain((n) => fc.record({
  n: fc.constant(n), t: fc.integer({ min: 1, max: n }), order: fc.array(fc.integer(), { minLength: n, maxLength: n }),
}));

test('refresh / reshare: any t shares of the new epoch rebuild the same root key', () => {
  fc.assert(fc.property(sharingArb, sharingArb, (a, b) => {
    const root = RootKey.generate();
    const before = splitSecret(root, a.t, a.n);
    const after = splitSecret(root, b.t, b.n); // the new epoch, maybe another (n, t)
    const chosen = pick(b.n, b.t, b.order).map((i) => after.shares[i]!);
    const key = combineShares(chosen, b.t);
    const ok = key.equals(root) && chosen.every((s) => after.commitments.verifyShare(s));
    key.destroy();
    root.destroy();
    // the old sharing's shares are not shares of the new one (t ≥ 2: a degree-0 polynomial is the key itself)
    const oldVerify = b.t >= 2 && before.shares.some((s) => s.id <= b.n && after.commitments.verifyShare(s));
    return ok && !oldVerify;
  }), { numRuns: 60 });
});

test('shares of mixed epochs (t ≥ 2, at least one of each) never rebuild the root key', () => {
  fc.assert(fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 0, max: 1000 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (t, seed, fromOld) => {
    const n = t + 1;
    const root = RootKey.generate();
    const e1 = splitSecret(root, t, n);
    const e2 = splitSecret(root, t, n);
    const flags = fromOld.slice(0, t);
    flags[seed % t] = true;
    flags[(seed + 1) % t] = false; // at least one of each epoch
    const mixed: Share[] = flags.map((old, i) => (old ? e1 : e2).shares[i]!);
    let rebuilt = false;
    try {
      const key = combineShares(mixed, t);
      rebuilt = key.equals(root);
      key.destroy();
    } catch {
      rebuilt = false; // refused outright is fine too
    }
    root.destroy();
    return !rebuilt;
  }), { numRuns: 60 });
});
