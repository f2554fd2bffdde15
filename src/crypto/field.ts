/**
 * Internal: the P-256 scalar field Z/nZ and group, from @noble/curves. Nothing here is
 * hand-rolled: reduction, inversion and point arithmetic are noble's. The only module of
 * src/crypto that loads noble (shamir.ts also uses its byte helpers); what imports it is
 * left out of the folder's curve-free door (curve-free.ts).
 *
 * Secrets: scalars passed through here are secret (root key, coefficients, share
 * values). They live as BigInt, which cannot be wiped and whose arithmetic is NOT
 * constant time (same caveat as CIRCL #638). Byte buffers made here are returned to
 * callers, who wipe them.
 */
import { createECDH } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { bytesToNumberBE, numberToBytesBE } from '@noble/curves/utils.js';
import { CryptoError } from './errors.js';
import { systemRandom, type RandomSource } from './random.js';
import { SCALAR_BYTES } from './scalar-bytes.js';
import { isValidShareId, type Share } from './share.js';
import { wipe } from './wipe.js';

export const Point = p256.Point;
export type Point = InstanceType<typeof p256.Point>;
export const Fn = p256.Point.Fn;
/** The P-256 group order n. */
export const ORDER: bigint = Fn.ORDER;

/**
 * Strict decode: exactly 32 bytes, big-endian, value < n. Throws CryptoError(code) on
 * anything else; never reduces.
 */
export function scalarFromBytes(b: Uint8Array, code: 'crypto_bad_key' | 'shamir_invalid_share'): bigint {
  if (!(b instanceof Uint8Array) || b.length !== SCALAR_BYTES) throw new CryptoError(code);
  try {
    return Fn.fromBytes(b);
  } catch {
    throw new CryptoError(code);
  }
}

/**
 * Strictly decodes a share: `shamir_invalid_share` unless the id is valid and the value
 * is 32 bytes, < n and non-zero. Returns the value as a scalar (secret BigInt).
 */
export function shareScalar(s: Share): bigint {
  if (s === null || typeof s !== 'object' || !isValidShareId(s.id)) throw new CryptoError('shamir_invalid_share');
  const y = scalarFromBytes(s.value, 'shamir_invalid_share');
  if (y === 0n) throw new CryptoError('shamir_invalid_share');
  return y;
}


/** 32-byte big-endian, left-padded encoding of a scalar (a new buffer the caller wipes). */
export function scalarToBytes(s: bigint): Uint8Array {
  return numberToBytesBE(s, SCALAR_BYTES);
}

/** Reduces 32 bytes modulo n (D5: the root key's canonical form). */
export function reduceBytes(b: Uint8Array): bigint {
  return Fn.create(bytesToNumberBE(b));
}

/**
 * Uniform random non-zero scalar by rejection sampling (32 bytes, retry if ≥ n or 0;
 * a retry happens with probability ≈ 2^-32).
 */
export function randomNonZeroScalar(rng: RandomSource = systemRandom): bigint {
  for (;;) {
    const b = rng(SCALAR_BYTES);
    try {
      if (b.length !== SCALAR_BYTES) throw new CryptoError('crypto_bad_input');
      const v = bytesToNumberBE(b);
      if (v !== 0n && v < ORDER) return v;
    } finally {
      wipe(b);
    }
  }
}

/**
 * g^k for a secret scalar k, 0 ≤ k < n (g^0 is the identity). Computed by OpenSSL (Node's
 * ECDH on prime256v1: the public key of private key k is g^k), whose P-256 base-point
 * multiplication is constant time, then decoded (and checked on the curve) by noble. Start-up
 * time: noble's own constant-time ladder builds a table for g on the first g^k of a process
 * (40-80 ms of CPU), and every process here computes only a few (Bootstrap's split, the share
 * checks of Nexus and of every Keeper): about 0.3 ms each this way. The scalar's bytes are
 * wiped after the call; OpenSSL clears its copy when the key object is freed.
 */
export function baseMul(k: bigint): Point {
  if (k === 0n) return Point.ZERO;
  if (k < 0n || k >= ORDER) throw new CryptoError('crypto_bad_input');
  const kb = scalarToBytes(k);
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(kb);
    return Point.fromBytes(ecdh.getPublicKey());
  } finally {
    wipe(kb);
  }
}
