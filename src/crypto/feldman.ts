/**
 * Feldman commitments (D6): the public points Cᵢ = g^aᵢ (i = 0..T−1) of a sharing
 * polynomial over P-256, and verification of one share against them:
 * g^f(id) = Σᵢ Cᵢ · idⁱ.
 *
 * Serialisation (`toBytes`, stored beside the key-check record and shown to operators):
 *   0x01 (format version) ‖ C₀ ‖ C₁ ‖ … ‖ C_{T−1}, each a 33-byte SEC1 compressed point.
 * T is (length − 1) / 33. `fromBytes` accepts only that exact form: version 1, 1 ≤ T ≤
 * MAX_SHARE_ID, every point a valid, canonical, compressed, non-identity P-256 point.
 *
 * Secrets: none stored — commitments are public. C₀ = g^secret is the root key's public
 * key, which is why the scalar itself is never used as an AES key (D7). `verifyShare`
 * computes g^value with the share value (secret) through `baseMul` (OpenSSL's constant-time
 * base-point multiplication, field.ts); BigInt arithmetic elsewhere is not constant time.
 */
import { createHash } from 'node:crypto';
import { CryptoError } from './errors.js';
import { baseMul, Point, shareScalar } from './field.js';
import { isValidShareId, MAX_SHARE_ID, type Share } from './share.js';

const FORMAT_VERSION = 0x01;
const POINT_BYTES = 33;

export class Commitments {
  readonly threshold: number;
  readonly #points: readonly Point[];

  private constructor(points: readonly Point[]) {
    this.#points = points;
    this.threshold = points.length;
  }

  /** @internal Commitments of a polynomial with the given (non-zero) coefficients. */
  static fromCoefficients(coeffs: readonly bigint[]): Commitments {
    if (coeffs.length < 1 || coeffs.length > MAX_SHARE_ID || coeffs.some((c) => c === 0n)) {
      throw new CryptoError('feldman_bad_commitments');
    }
    return new Commitments(coeffs.map((c) => baseMul(c)));
  }

  /** Parses the compact form (see header); anything else is `feldman_bad_commitments`. */
  static fromBytes(b: Uint8Array): Commitments {
    if (!(b instanceof Uint8Array) || b.length < 1 + POINT_BYTES || (b.length - 1) % POINT_BYTES !== 0) {
      throw new CryptoError('feldman_bad_commitments');
    }
    const t = (b.length - 1) / POINT_BYTES;
    if (b[0] !== FORMAT_VERSION || t > MAX_SHARE_ID) throw new CryptoError('feldman_bad_commitments');
    const points: Point[] = [];
    for (let i = 0; i < t; i++) {
      const enc = b.subarray(1 + i * POINT_BYTES, 1 + (i + 1) * POINT_BYTES);
      if (enc[0] !== 0x02 && enc[0] !== 0x03) throw new CryptoError('feldman_bad_commitments');
      let p: Point;
      try {
        p = Point.fromBytes(enc);
        p.assertValidity();
      } catch {
        throw new CryptoError('feldman_bad_commitments');
      }
      if (p.is0() || !bytesEqual(p.toBytes(true), enc)) throw new CryptoError('feldman_bad_commitments');
      points.push(p);
    }
    return new Commitments(points);
  }

  /** The compact serialisation (a new buffer). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(1 + this.#points.length * POINT_BYTES);
    out[0] = FORMAT_VERSION;
    this.#points.forEach((p, i) => out.set(p.toBytes(true), 1 + i * POINT_BYTES));
    return out;
  }

  /**
   * True iff the share lies on the committed polynomial: g^value = Σᵢ Cᵢ·idⁱ. Never
   * throws: a malformed share (bad id, wrong length, value ≥ n or zero) is `false`.
   */
  verifyShare(s: Share): boolean {
    let y: bigint;
    try {
      y = shareScalar(s);
    } catch {
      return false;
    }
    if (!isValidShareId(s.id)) return false;
    const x = BigInt(s.id);
    // Horner over the group: ((C_{T−1}·x + C_{T−2})·x + …)·x + C₀. x and Cᵢ are public.
    let acc = this.#points[this.#points.length - 1]!;
    for (let i = this.#points.length - 2; i >= 0; i--) acc = acc.multiplyUnsafe(x).add(this.#points[i]!);
    return baseMul(y).equals(acc);
  }

  /** Like `verifyShare` but throws `shamir_verify_failed`. */
  assertShare(s: Share): void {
    if (!this.verifyShare(s)) throw new CryptoError('shamir_verify_failed');
  }

  /** SHA-256 of `toBytes()`: a short public fingerprint for messages and logs. */
  digest(): Uint8Array {
    return new Uint8Array(createHash('sha256').update(this.toBytes()).digest());
  }

  /** g^secret, compressed (33 bytes) — the first commitment. */
  publicKey(): Uint8Array {
    return this.#points[0]!.toBytes(true);
  }

  /** True when both commit to the same polynomial. */
  equals(o: Commitments): boolean {
    return this.threshold === o.threshold && this.#points.every((p, i) => p.equals(o.#points[i]!));
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
