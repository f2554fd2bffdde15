/**
 * The randomness seam: every random byte in `src/crypto/` comes from a `RandomSource`,
 * by default the OS CSPRNG through `node:crypto.randomFillSync`. Tests inject a fixed
 * source to exercise edge cases (an RNG returning 32×0xFF or all zeros, SSS-13).
 * Production code never passes one.
 */
import { randomFillSync } from 'node:crypto';

/** Returns `n` fresh random bytes (a new buffer the caller owns and wipes). */
export type RandomSource = (n: number) => Uint8Array;

export const systemRandom: RandomSource = (n) => randomFillSync(new Uint8Array(n));
