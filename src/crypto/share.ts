/**
 * What a share is, on its own: an id (1..MAX_SHARE_ID) and a 32-byte big-endian value, and
 * the id check every user of shares applies (Shamir splitting and combining, Feldman
 * verification, the SPIKE encodings). It sits below all of them so none has to import
 * another to learn what a valid share looks like, and it loads no curve code: the strict
 * decode of a value into a scalar (`shareScalar`, value < n and non-zero) is in field.ts.
 *
 * Secrets: a share value is secret; `wipeShare` zeroes the value buffer.
 */
import { SCALAR_BYTES } from './scalar-bytes.js';
import { wipe } from './wipe.js';

/** One share as SPIKE carries it: an id (1..N) and a 32-byte big-endian value. */
export interface Share {
  readonly id: number;
  readonly value: Uint8Array;
}

/** Largest share id and largest N accepted (SPIKE_NEXUS_SHAMIR_MAX_SHARE_COUNT default). */
export const MAX_SHARE_ID = 1000;

/** Length of a share value: one P-256 scalar, big-endian. */
export const SHARE_VALUE_BYTES = SCALAR_BYTES;

/** True when `id` is a valid share id (integer in 1..MAX_SHARE_ID). */
export function isValidShareId(id: unknown): id is number {
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 1 && id <= MAX_SHARE_ID;
}

/** Zeroes a share's value buffer. */
export function wipeShare(s: Share): void {
  wipe(s.value);
}
