/**
 * Shamir secret sharing of the root key over the P-256 scalar field (D5), with SPIKE's
 * conventions: `threshold` T is the number of shares needed (polynomial
 * degree T−1), share ids are 1..N, a share value is the 32-byte big-endian encoding of
 * f(id), and the id is never inside the value bytes.
 *
 * `splitSecret` draws RANDOM coefficients (D5). `spikeCompatibleShares` reproduces SPIKE's
 * deterministic SHA-256-chain coefficients and exists only for interop
 * tests. Field arithmetic (reduction, inversion) is @noble/curves'; the polynomial and
 * Lagrange code below is ours.
 *
 * Validation (SSS-02…07): an id that is not an integer in 1..MAX_SHARE_ID, a
 * value that is not exactly 32 bytes, is ≥ n, or is zero (SPIKE treats an all-zero shard
 * as absent), duplicate ids (same or different value), or fewer than `threshold` shares
 * are typed errors — never a wrong key, never a crash. Incoming values are never reduced.
 *
 * Which shares are used: all given shares are validated; the key (or target share) is
 * interpolated from the FIRST `threshold` of them in the given order, and every further
 * share must lie on that same polynomial, else `shamir_inconsistent_shares`. So with
 * more than `threshold` shares the result is either consistent with all of them or an
 * error. (Feldman verification against commitments, feldman.ts, is the real check and
 * should run before combining.) What a valid share is lives in share.ts.
 *
 * Secrets: the root scalar, the coefficients and the share values. Share value buffers
 * are returned to the caller (wipe with `wipeShare`); temporary byte buffers are wiped
 * here in `finally`. BigInt temporaries (coefficients, Lagrange terms) cannot be wiped
 * and BigInt arithmetic is NOT constant time (cf. CIRCL #638); loops have no
 * secret-dependent early exits.
 */
import { createHash } from 'node:crypto';
import { CryptoError } from './errors.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { Fn, ORDER, randomNonZeroScalar, scalarToBytes, shareScalar } from './field.js';
import { Commitments } from './feldman.js';
import { systemRandom, type RandomSource } from './random.js';
import { RootKey } from './rootkey.js';
import { isValidShareId, MAX_SHARE_ID, wipeShare, type Share } from './share.js';
import { wipe } from './wipe.js';

interface SplitResult {
  shares: Share[];
  commitments: Commitments;
}

/** Validates (threshold, shares): integers with 1 ≤ T ≤ N ≤ MAX_SHARE_ID. */
function assertShamirParams(threshold: number, shares: number): void {
  if (!isThreshold(threshold) || !Number.isSafeInteger(shares) || shares < threshold || shares > MAX_SHARE_ID) {
    throw new CryptoError('shamir_bad_params');
  }
}

function isThreshold(t: number): boolean {
  return Number.isSafeInteger(t) && t >= 1 && t <= MAX_SHARE_ID;
}

/** f(x) by Horner's rule; `coeffs[0]` is the constant term. */
function evalPoly(coeffs: readonly bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let i = coeffs.length - 1; i >= 0; i--) acc = Fn.add(Fn.mul(acc, x), coeffs[i]!);
  return acc;
}

interface XY {
  x: bigint;
  y: bigint;
}

/**
 * Lagrange interpolation of the points at `x`: Σᵢ yᵢ · Πⱼ≠ᵢ (x − xⱼ)/(xᵢ − xⱼ) mod n.
 * The xᵢ must be distinct (checked by the callers).
 */
function lagrangeAt(pts: readonly XY[], x: bigint): bigint {
  let acc = 0n;
  for (let i = 0; i < pts.length; i++) {
    const pi = pts[i]!;
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < pts.length; j++) {
      if (j === i) continue;
      const xj = pts[j]!.x;
      num = Fn.mul(num, Fn.sub(x, xj));
      den = Fn.mul(den, Fn.sub(pi.x, xj));
    }
    acc = Fn.add(acc, Fn.mul(pi.y, Fn.div(num, den)));
  }
  return acc;
}

/** Validates shares and threshold; returns the decoded points (in the given order). */
function decodeShares(shares: readonly Share[], threshold: number): XY[] {
  if (!isThreshold(threshold)) throw new CryptoError('shamir_bad_params');
  if (!Array.isArray(shares)) throw new CryptoError('shamir_invalid_share');
  const pts: XY[] = [];
  const seen = new Set<number>();
  for (const s of shares) {
    const y = shareScalar(s);
    if (seen.has(s.id)) throw new CryptoError('shamir_duplicate_id');
    seen.add(s.id);
    pts.push({ x: BigInt(s.id), y });
  }
  if (pts.length < threshold) throw new CryptoError('shamir_too_few_shares');
  return pts;
}

/** Interpolates at x from the first `threshold` points and checks every other point. */
function interpolateChecked(pts: readonly XY[], threshold: number, x: bigint): bigint {
  const basis = pts.slice(0, threshold);
  let consistent = true;
  for (const extra of pts.slice(threshold)) {
    // No early exit: every extra share is checked.
    if (lagrangeAt(basis, extra.x) !== extra.y) consistent = false;
  }
  if (!consistent) throw new CryptoError('shamir_inconsistent_shares');
  return lagrangeAt(basis, x);
}

function makeShares(coeffs: readonly bigint[], n: number): Share[] | null {
  const shares: Share[] = [];
  let hasZero = false;
  for (let id = 1; id <= n; id++) {
    const y = evalPoly(coeffs, BigInt(id));
    if (y === 0n) hasZero = true;
    shares.push({ id, value: scalarToBytes(y) });
  }
  if (hasZero) {
    shares.forEach(wipeShare);
    return null;
  }
  return shares;
}

/**
 * Splits the root key into `shares` shares, any `threshold` of which rebuild it (D5:
 * random non-zero coefficients from `rng`, default the CSPRNG). Ids are 1..N. Also
 * returns the Feldman commitments g^aᵢ, i = 0..T−1 (D6). A polynomial with a zero share
 * value (probability ≈ N·2^-256) is redrawn, because SPIKE treats a zero shard as absent.
 */
export function splitSecret(secret: RootKey, threshold: number, shares: number, rng: RandomSource = systemRandom): SplitResult {
  assertShamirParams(threshold, shares);
  const k = secret.scalar();
  for (;;) {
    const coeffs = [k];
    for (let i = 1; i < threshold; i++) coeffs.push(randomNonZeroScalar(rng));
    const out = makeShares(coeffs, shares);
    if (out) return { shares: out, commitments: Commitments.fromCoefficients(coeffs) };
  }
}

/**
 * Rebuilds the root key from shares (see the module header for validation and for which
 * shares are used). Throws `shamir_*` errors on bad input; a zero result (only possible
 * from wrong shares) is `shamir_inconsistent_shares`.
 */
export function combineShares(shares: readonly Share[], threshold: number): RootKey {
  const pts = decodeShares(shares, threshold);
  const k = interpolateChecked(pts, threshold, 0n);
  if (k === 0n) throw new CryptoError('shamir_inconsistent_shares');
  return RootKey.fromScalar(k);
}

/**
 * Computes the share with id `targetId` of the same polynomial from `threshold` (or
 * more, all consistent) shares — Nexus uses it to re-push a restarted Keeper's share
 * (SSS-14). The returned value is a new buffer the caller wipes.
 */
export function interpolateShare(shares: readonly Share[], threshold: number, targetId: number): Share {
  if (!isValidShareId(targetId)) throw new CryptoError('shamir_bad_params');
  const pts = decodeShares(shares, threshold);
  const y = interpolateChecked(pts, threshold, BigInt(targetId));
  if (y === 0n) throw new CryptoError('shamir_inconsistent_shares');
  return { id: targetId, value: scalarToBytes(y) };
}

/**
 * SPIKE's deterministic share derivation, for interoperability tests
 * only — production splitting uses `splitSecret` (D5). Coefficients c₁…c_{T−1} are read
 * from the stream SHA-256(key), SHA-256(previous block), … in 32-byte blocks, skipping
 * a block ≥ n (Go `crypto/rand.Int`). Commitments are returned too, so that SPIKE-made
 * shares can be verified in tests.
 *
 * Checked against upstream sources (not by running Go): spike-sdk-go `crypto/io.go`
 * (the SHA-256 chain) and CIRCL `group/short.go`, whose `RandomScalar` is
 * `rand.Int(rd, N)` from v1.6.2 on (the SDK pins v1.6.2). CIRCL ≤ v1.6.1 instead hashed
 * the 32 bytes to a scalar (hash_to_field, XMD-SHA-256), so SPIKE builds on those
 * versions derive different shares; combining is unaffected (D5).
 */
export function spikeCompatibleShares(secret: RootKey, threshold: number, n: number): SplitResult {
  assertShamirParams(threshold, n);
  const k = secret.scalar();
  const keyBytes = secret.bytes();
  let block = createHash('sha256').update(keyBytes).digest();
  wipe(keyBytes);
  const coeffs = [k];
  try {
    while (coeffs.length < threshold) {
      const c = bytesToNumberBE(block);
      if (c < ORDER) coeffs.push(c);
      const next = createHash('sha256').update(block).digest();
      wipe(block);
      block = next;
    }
  } finally {
    wipe(block);
  }
  if (coeffs.some((c) => c === 0n)) throw new CryptoError('shamir_bad_params');
  const shares = makeShares(coeffs, n);
  if (!shares) throw new CryptoError('shamir_bad_params');
  return { shares, commitments: Commitments.fromCoefficients(coeffs) };
}
