/**
 * Shamir + Feldman: fast-check properties for random (n, t), 1 ≤ t ≤ n ≤ 20, and the
 * hostile cases SSS-01…SSS-16.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Commitments, CryptoError, MAX_SHARE_ID, RootKey, combineShares, interpolateShare, splitSecret,
  spikeCompatibleShares, wipeShare, type Share,
} from './index.js';

const N_HEX = 'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const copy = (s: Share): Share => ({ id: s.id, value: Uint8Array.from(s.value) });
const fixedKey = (): RootKey => RootKey.fromBytes(Uint8Array.from({ length: 32 }, (_, i) => i + 1));

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof CryptoError && e.code === code, `expected ${code}`);
}

/** (n, t) with 1 ≤ t ≤ n ≤ 20, plus a seed for choosing subsets. */
const params = fc.integer({ min: 1, max: 20 }).chain((n) =>
  fc.record({ n: fc.constant(n), t: fc.integer({ min: 1, max: n }), perm: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }) }),
);
const RUNS = { numRuns: 60 };

test('property: any t shares rebuild the key; shuffled order gives the same key', () => {
  fc.assert(fc.property(params, ({ n, t, perm }) => {
    const key = RootKey.generate();
    const { shares } = splitSecret(key, t, n);
    const subset = perm.slice(0, t).map((i) => shares[i]!);
    assert.ok(combineShares(subset, t).equals(key));
    assert.ok(combineShares([...subset].reverse(), t).equals(key));
    assert.ok(combineShares(perm.map((i) => shares[i]!), t).equals(key), 'all n shares, shuffled');
  }), RUNS);
});

test('property: t−1 shares never give the key (error at threshold t, a different key at threshold t−1)', () => {
  fc.assert(fc.property(params, ({ n, t, perm }) => {
    const key = RootKey.generate();
    const { shares } = splitSecret(key, t, n);
    const fewer = perm.slice(0, t - 1).map((i) => shares[i]!);
    throwsCode(() => combineShares(fewer, t), 'shamir_too_few_shares');
    if (t >= 2) assert.ok(!combineShares(fewer, t - 1).equals(key));
  }), RUNS);
});

test('property: interpolating share j from any t others equals share j (SSS-14)', () => {
  fc.assert(fc.property(params, fc.nat(), ({ n, t, perm }, jSeed) => {
    const key = RootKey.generate();
    const { shares, commitments } = splitSecret(key, t, n);
    const j = shares[jSeed % n]!;
    const others = perm.map((i) => shares[i]!).filter((s) => s.id !== j.id);
    if (others.length >= t) {
      const got = interpolateShare(others.slice(0, t), t, j.id);
      assert.equal(got.id, j.id);
      assert.equal(hex(got.value), hex(j.value));
      assert.ok(commitments.verifyShare(got));
    } else {
      throwsCode(() => interpolateShare(others, t, j.id), 'shamir_too_few_shares');
    }
  }), RUNS);
});

test('property: every share verifies; a flipped bit in a value, an id or one commitment fails verification', () => {
  fc.assert(fc.property(params, fc.nat(), fc.nat(), ({ n, t }, a, b) => {
    const key = RootKey.generate();
    const { shares, commitments } = splitSecret(key, t, n);
    assert.equal(commitments.threshold, t);
    for (const s of shares) assert.ok(commitments.verifyShare(s));
    const s = shares[a % n]!;
    // value bit
    const v = Uint8Array.from(s.value);
    v[(b >> 3) % 32]! ^= 1 << (b & 7);
    assert.ok(!commitments.verifyShare({ id: s.id, value: v }));
    // id bit (ids up to 1000 use 10 bits). With t = 1 the polynomial is constant and every
    // share equals the key whatever its id, so an id cannot be wrong (SSS-12: dev-only).
    const flippedId = { id: s.id ^ (1 << (b % 10)), value: s.value };
    assert.equal(commitments.verifyShare(flippedId), t === 1 && flippedId.id >= 1 && flippedId.id <= MAX_SHARE_ID);
    // one bit of one commitment (any byte after the format version)
    const cb = commitments.toBytes();
    const pos = 1 + (b % (cb.length - 1));
    cb[pos]! ^= 1 << (a & 7);
    let tampered: Commitments | undefined;
    try {
      tampered = Commitments.fromBytes(cb);
    } catch (e) {
      assert.ok(e instanceof CryptoError && e.code === 'feldman_bad_commitments');
    }
    if (tampered) for (const sh of shares) assert.ok(!tampered.verifyShare(sh));
  }), RUNS);
});

test('Commitments: serialisation round-trips; publicKey is C0 = g^secret; digest is SHA-256 of the bytes', async () => {
  const { p256 } = await import('@noble/curves/nist.js');
  const { createHash } = await import('node:crypto');
  const key = fixedKey();
  const { commitments } = splitSecret(key, 3, 5);
  const b = commitments.toBytes();
  assert.equal(b.length, 1 + 3 * 33);
  assert.equal(b[0], 1);
  const back = Commitments.fromBytes(b);
  assert.ok(back.equals(commitments));
  assert.equal(hex(back.toBytes()), hex(b));
  const kb = key.bytes();
  assert.equal(hex(commitments.publicKey()), hex(p256.getPublicKey(kb, true)));
  assert.equal(hex(commitments.digest()), createHash('sha256').update(b).digest('hex'));
  for (const bad of [new Uint8Array(0), b.subarray(0, 33), b.subarray(1), Uint8Array.from([2, ...b.subarray(1)]),
    Uint8Array.from([...b, 0]), Uint8Array.from([1, ...p256.Point.BASE.toBytes(false)])]) {
    throwsCode(() => Commitments.fromBytes(bad), 'feldman_bad_commitments');
  }
});

test('SSS-01: every t-subset recovers the key and every (t−1)-subset errors', () => {
  const subsets = (arr: number[], k: number): number[][] =>
    k === 0 ? [[]] : arr.flatMap((x, i) => subsets(arr.slice(i + 1), k - 1).map((r) => [x, ...r]));
  for (const [t, n] of [[1, 1], [2, 3], [3, 5], [5, 7], [7, 10]] as const) {
    const key = RootKey.generate();
    const { shares } = splitSecret(key, t, n);
    const idx = [...Array(n).keys()];
    for (const sub of subsets(idx, t)) assert.ok(combineShares(sub.map((i) => shares[i]!), t).equals(key));
    for (const sub of subsets(idx, t - 1)) throwsCode(() => combineShares(sub.map((i) => shares[i]!), t), 'shamir_too_few_shares');
  }
});

test('SSS-02: fewer than t shares is an error, never a value', () => {
  const { shares } = splitSecret(RootKey.generate(), 3, 5);
  throwsCode(() => combineShares(shares.slice(0, 2), 3), 'shamir_too_few_shares');
  throwsCode(() => combineShares([], 1), 'shamir_too_few_shares');
  throwsCode(() => interpolateShare(shares.slice(0, 2), 3, 4), 'shamir_too_few_shares');
});

test('SSS-03: duplicate ids (identical share twice, or same id with another value) are a clean error', () => {
  const { shares } = splitSecret(RootKey.generate(), 2, 3);
  const [a, b] = [shares[0]!, shares[1]!];
  throwsCode(() => combineShares([a, copy(a)], 2), 'shamir_duplicate_id');
  throwsCode(() => combineShares([a, { id: a.id, value: b.value }], 2), 'shamir_duplicate_id');
  throwsCode(() => combineShares([a, b, copy(b)], 2), 'shamir_duplicate_id');
  throwsCode(() => interpolateShare([a, copy(a)], 2, 3), 'shamir_duplicate_id');
});

test('SSS-04: a share with id 0 is rejected (it would let an attacker choose the secret)', () => {
  const { shares, commitments } = splitSecret(RootKey.generate(), 2, 3);
  const zero = { id: 0, value: shares[0]!.value };
  throwsCode(() => combineShares([zero, shares[1]!], 2), 'shamir_invalid_share');
  assert.equal(commitments.verifyShare(zero), false);
  throwsCode(() => interpolateShare(shares, 2, 0), 'shamir_bad_params');
});

test('SSS-05: ids out of range (> max, ≥ 2^53, negative, fractional, NaN) are rejected', () => {
  const { shares, commitments } = splitSecret(RootKey.generate(), 2, 3);
  const v = shares[0]!.value;
  for (const id of [MAX_SHARE_ID + 1, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, Infinity, -1, 1.5, NaN]) {
    throwsCode(() => combineShares([{ id, value: v }, shares[1]!], 2), 'shamir_invalid_share');
    assert.equal(commitments.verifyShare({ id, value: v }), false);
  }
  throwsCode(() => combineShares([{ id: '1' as unknown as number, value: v }, shares[1]!], 2), 'shamir_invalid_share');
});

test('SSS-06: a value ≥ the group order is rejected, never reduced', () => {
  const { shares, commitments } = splitSecret(RootKey.generate(), 2, 3);
  const nPlus1 = unhex(N_HEX);
  nPlus1[31]! += 1; // n + 1 ≡ 1 mod n: a reducing decoder would accept it as 1
  for (const value of [new Uint8Array(32).fill(0xff), unhex(N_HEX), nPlus1, new Uint8Array(32)]) {
    throwsCode(() => combineShares([{ id: 1, value }, shares[1]!], 2), 'shamir_invalid_share');
    assert.equal(commitments.verifyShare({ id: 1, value }), false);
  }
});

test('SSS-07: value lengths 0, 31, 33 and 64 are rejected', () => {
  const { shares } = splitSecret(RootKey.generate(), 2, 3);
  for (const len of [0, 31, 33, 64]) {
    const value = new Uint8Array(len).fill(1);
    throwsCode(() => combineShares([{ id: 1, value }, shares[1]!], 2), 'shamir_invalid_share');
  }
  throwsCode(() => combineShares([{ id: 1, value: [1, 2] as unknown as Uint8Array }, shares[1]!], 2), 'shamir_invalid_share');
});

test('SSS-08: one bit flipped in one of exactly t shares fails Feldman verification before combining', () => {
  const key = RootKey.generate();
  const { shares, commitments } = splitSecret(key, 3, 5);
  const picked = shares.slice(0, 3).map(copy);
  picked[1]!.value[17]! ^= 0x10;
  assert.deepEqual(picked.map((s) => commitments.verifyShare(s)), [true, false, true]);
  // Without the verification step, the combination yields a different key: why it must run first.
  assert.ok(!combineShares(picked, 3).equals(key));
});

test('SSS-09: the correct value under the wrong index fails verification', () => {
  const { shares, commitments } = splitSecret(RootKey.generate(), 2, 3);
  assert.equal(commitments.verifyShare({ id: 2, value: shares[0]!.value }), false);
  assert.equal(commitments.verifyShare({ id: 4, value: shares[0]!.value }), false);
});

test('SSS-10: t+1 shares with one inconsistent — verification names it, the other t recover, combining all never yields a wrong key', () => {
  const key = RootKey.generate();
  const { shares, commitments } = splitSecret(key, 3, 5);
  for (let bad = 0; bad < 4; bad++) {
    const set = shares.slice(0, 4).map(copy);
    set[bad]!.value[0]! ^= 0x01;
    const failing = set.filter((s) => !commitments.verifyShare(s)).map((s) => s.id);
    assert.deepEqual(failing, [bad + 1]);
    const good = set.filter((s) => commitments.verifyShare(s));
    assert.ok(combineShares(good, 3).equals(key));
    throwsCode(() => combineShares(set, 3), 'shamir_inconsistent_shares');
  }
});

test('SSS-11: shares of two different root keys do not verify against the other commitments', () => {
  const a = splitSecret(RootKey.generate(), 2, 3);
  const b = splitSecret(RootKey.generate(), 2, 3);
  for (const s of b.shares) assert.equal(a.commitments.verifyShare(s), false);
  throwsCode(() => combineShares([a.shares[0]!, b.shares[1]!, a.shares[2]!], 2), 'shamir_inconsistent_shares');
});

test('SSS-12: bad parameters (t=0, t>n, n>max, non-integers) are errors; t=1 and n=1 work', () => {
  const key = RootKey.generate();
  for (const [t, n] of [[0, 3], [4, 3], [2, MAX_SHARE_ID + 1], [1.5, 3], [2, 2.5], [NaN, 3], [-1, 3]]) {
    throwsCode(() => splitSecret(key, t!, n!), 'shamir_bad_params');
  }
  throwsCode(() => combineShares(splitSecret(key, 2, 3).shares, 0), 'shamir_bad_params');
  const one = splitSecret(key, 1, 1);
  assert.equal(hex(one.shares[0]!.value), hex(key.bytes()), 't = 1: the constant polynomial, every share is the key');
  assert.ok(combineShares(one.shares, 1).equals(key));
  const t1 = splitSecret(key, 1, 3);
  for (const s of t1.shares) assert.ok(combineShares([s], 1).equals(key));
});

test('SSS-13: RNG returning 32×0xFF gives the key reduced mod n; 32 zero bytes are resampled', () => {
  const ff = RootKey.generate(() => new Uint8Array(32).fill(0xff));
  const expected = (2n ** 256n - 1n - BigInt('0x' + N_HEX)).toString(16).padStart(64, '0');
  assert.equal(expected, '00000000ffffffff00000000000000004319055258e8617b0c46353d039cdaae');
  assert.equal(hex(ff.bytes()), expected);
  let calls = 0;
  const k = RootKey.generate(() => (calls++ === 0 ? new Uint8Array(32) : new Uint8Array(32).fill(7)));
  assert.equal(calls, 2);
  assert.equal(hex(k.bytes()), '07'.repeat(32));
  // Exactly n also reduces to zero and is resampled.
  calls = 0;
  RootKey.generate(() => (calls++ === 0 ? unhex(N_HEX) : new Uint8Array(32).fill(7)));
  assert.equal(calls, 2);
});

test('SSS-14: a re-pushed share is byte-identical to the original, and any t still recover the same key', () => {
  const key = RootKey.generate();
  const { shares } = splitSecret(key, 3, 5);
  const restarted = shares[3]!; // Keeper 4 restarted and lost its share
  const fresh = interpolateShare([shares[4]!, shares[0]!, shares[2]!], 3, 4);
  assert.equal(hex(fresh.value), hex(restarted.value));
  assert.ok(combineShares([fresh, shares[1]!, shares[4]!], 3).equals(key));
  // Consistent extra shares are accepted; an interpolated id outside 1..max is refused.
  assert.equal(hex(interpolateShare(shares, 3, 4).value), hex(restarted.value));
  throwsCode(() => interpolateShare(shares, 3, MAX_SHARE_ID + 1), 'shamir_bad_params');
});

test('SSS-15: SPIKE-compatible deterministic shares match SPIKE\'s known vectors and combine here', () => {
  const key = fixedKey();
  const v23 = spikeCompatibleShares(key, 2, 3);
  assert.deepEqual(v23.shares.map((s) => [s.id, hex(s.value)]), [
    [1, 'af236f32fa2a813f8bcb40fbaf87b2f4ded823a83c257443fea67d20d4c431e9'],
    [2, '5d44db62ef4efb760e8c76eb520156d9efb7398ebc1d32eaf079146290071f61'],
    [3, '0b664792e47375ac914dacdaf47afabf00964f753c14f191e24baba44b4a0cd9'],
  ]);
  const v35 = spikeCompatibleShares(key, 3, 5);
  assert.deepEqual(v35.shares.map((s) => hex(s.value)), [
    'd7060f775f1f687b1cfc95871d87713c8d221022b18839e5568d203073e11d52',
    'fccf5c74832298645351c9190a004ff8a8deeb7891a849705013a0a10c7acd05',
    '725de9fb710f96c3ac09a5c1d278ab446448a515b57645b905ad9c6de6eb2e39',
    '37b1b80b28e6639a27242b8176f0831f7c4637a7c409cd446b14de59ff95663f',
    '4ccac6a3aaa6fee7c4a15a57f767d789f0d7a32ebd62e0128049666556797517',
  ]);
  // Deterministic: the same key gives the same shares; a random split does not.
  assert.equal(hex(spikeCompatibleShares(key, 3, 5).shares[0]!.value), hex(v35.shares[0]!.value));
  assert.notEqual(hex(splitSecret(key, 3, 5).shares[0]!.value), hex(v35.shares[0]!.value));
  // Combining does not care how coefficients were drawn (D5).
  assert.ok(combineShares([v35.shares[4]!, v35.shares[1]!, v35.shares[2]!], 3).equals(key));
  for (const s of v35.shares) assert.ok(v35.commitments.verifyShare(s));
  const t1 = spikeCompatibleShares(key, 1, 2);
  assert.equal(hex(t1.shares[1]!.value), hex(key.bytes()), 'T = 1: every share equals the root key');
});

test('SSS-16: buffers we own are zeroed — RNG output, wiped shares, destroyed keys; inputs are not mutated', () => {
  const drawn: Uint8Array[] = [];
  const rng = (n: number): Uint8Array => {
    const b = new Uint8Array(n).fill(0x42);
    drawn.push(b);
    return b;
  };
  const key = RootKey.generate(rng);
  const { shares } = splitSecret(key, 3, 5, rng);
  assert.ok(drawn.length >= 3);
  for (const b of drawn) assert.ok(b.every((x) => x === 0), 'random bytes wiped after use');
  const before = shares.map((s) => hex(s.value));
  const rebuilt = combineShares(shares, 3);
  assert.deepEqual(shares.map((s) => hex(s.value)), before, 'combine leaves the caller’s shares alone');
  shares.forEach(wipeShare);
  for (const s of shares) assert.ok(s.value.every((x) => x === 0));
  const copyOut = rebuilt.bytes();
  copyOut.fill(0);
  assert.ok(rebuilt.equals(key), 'bytes() returns a copy');
  rebuilt.destroy();
  throwsCode(() => rebuilt.bytes(), 'crypto_key_destroyed');
  throwsCode(() => splitSecret(rebuilt, 2, 3), 'crypto_key_destroyed');
});
