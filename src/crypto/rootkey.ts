/**
 * The root key: a non-zero P-256 scalar held as 32 big-endian bytes (SPIKE's "canonical
 * key"; D5).
 *
 * Secret: the key bytes. A `RootKey` owns one private copy; `bytes()` hands out a new
 * copy the caller must wipe; `destroy()` zeroes the private copy and makes every later
 * use throw `crypto_key_destroyed`. `fromBytes` copies its input and does not wipe it
 * (the caller owns it). `generate` wipes the random bytes it drew. The BigInt returned
 * by the internal `scalar()` cannot be wiped and BigInt arithmetic is not constant
 * time.
 *
 * Generation (D5, SSS-13): 32 CSPRNG bytes read big-endian and reduced modulo
 * n (so 32×0xFF becomes 0xFF…FF − n); a zero result is resampled. The reduction biases
 * a 2^-32 fraction of values by a factor of two, a loss of well under one bit of
 * min-entropy; unlike SPIKE, Bootstrap can never exit on an out-of-range seed (G3).
 */
import { timingSafeEqual } from 'node:crypto';
import { CryptoError } from './errors.js';
import { reduceBytes, scalarFromBytes, scalarToBytes } from './field.js';
import { systemRandom, type RandomSource } from './random.js';
import { SCALAR_BYTES } from './scalar-bytes.js';
import { wipe } from './wipe.js';

export class RootKey {
  #bytes: Uint8Array;
  #destroyed = false;

  private constructor(canonical: Uint8Array) {
    this.#bytes = canonical;
  }

  /** Size of the key in bytes. */
  static readonly BYTES = SCALAR_BYTES;

  /** A fresh root key from the CSPRNG (or an injected source, for tests only). */
  static generate(rng: RandomSource = systemRandom): RootKey {
    for (;;) {
      const raw = rng(SCALAR_BYTES);
      try {
        if (raw.length !== SCALAR_BYTES) throw new CryptoError('crypto_bad_input');
        const k = reduceBytes(raw);
        if (k !== 0n) return new RootKey(scalarToBytes(k));
      } finally {
        wipe(raw);
      }
    }
  }

  /**
   * Strict: exactly 32 bytes, value < n and ≠ 0, else `crypto_bad_key`. Copies `b`.
   * Use this for keys that arrive from elsewhere (reconstruction, SPIKE); never reduces.
   */
  static fromBytes(b: Uint8Array): RootKey {
    const k = scalarFromBytes(b, 'crypto_bad_key');
    if (k === 0n) throw new CryptoError('crypto_bad_key');
    return new RootKey(Uint8Array.from(b));
  }

  /** @internal Builds a key from a scalar (used by Shamir reconstruction). */
  static fromScalar(k: bigint): RootKey {
    if (k <= 0n) throw new CryptoError('crypto_bad_key');
    const b = scalarToBytes(k);
    try {
      return RootKey.fromBytes(b);
    } finally {
      wipe(b);
    }
  }

  /** A copy of the 32 canonical bytes; the caller must wipe it. */
  bytes(): Uint8Array {
    this.#check();
    return Uint8Array.from(this.#bytes);
  }

  /** @internal The scalar value (a BigInt: cannot be wiped, not constant time). */
  scalar(): bigint {
    this.#check();
    return scalarFromBytes(this.#bytes, 'crypto_bad_key');
  }

  /** Constant-time comparison of the two keys' bytes. */
  equals(o: RootKey): boolean {
    this.#check();
    o.#check();
    return timingSafeEqual(this.#bytes, o.#bytes);
  }

  /** Zeroes the key; later calls throw `crypto_key_destroyed`. Idempotent. */
  destroy(): void {
    wipe(this.#bytes);
    this.#destroyed = true;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #check(): void {
    if (this.#destroyed) throw new CryptoError('crypto_key_destroyed');
  }

  /** Never reveal key bytes through inspection or JSON. */
  toJSON(): string {
    return '[RootKey]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[RootKey]';
  }
}
