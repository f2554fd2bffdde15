/**
 * The seal fence: which storage generation new records must be sealed under, stored beside the
 * keyring (key-custody.ts writes it with every keyring update; every sealing write reads it
 * inside its own transaction).
 */
import { StoreError } from './types.js';

/**
 * System record: the storage generation new records must be sealed under (u32 BE), written in
 * the same transaction as every keyring update and read inside every sealing write (the seal
 * fence). A process that still seals under an older generation (another worker or instance
 * moved the keyring on: a rotation, the seal limit) cannot commit: its write is refused, it
 * reloads the keyring and seals again. Without it, such a write could commit after the
 * re-encryption erased its generation, and an acknowledged write would become unreadable.
 */
export const SEAL_FENCE_RECORD = 'storage_current';

export function sealFence(current: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, current);
  return b;
}

/** Whether a write sealing under generation `current` may commit beside the stored fence. */
export function fenceAllows(stored: Uint8Array | null, current: number): boolean {
  // None yet: a store no keyring update has touched since the fence exists (the first one, at
  // unlock, writes it); there is then one writer generation to seal under.
  if (stored === null) return true;
  return fenceGeneration(stored) === current;
}

/** The cause of a write refused by the seal fence: reload the keyring and seal again. */
const FENCE_MOVED = Symbol('seal fence moved');

/** Inside a write transaction: throws (retryable, nothing written) unless the fence allows `current`. */
export function assertFence(stored: Uint8Array | null, current: number): void {
  if (!fenceAllows(stored, current)) throw new StoreError('store_busy', { outcome: 'not_applied', cause: FENCE_MOVED });
}

export function isFenceRefusal(e: unknown): boolean {
  return e instanceof StoreError && e.cause === FENCE_MOVED;
}

/** The generation a stored fence names (undefined: none stored, or not a fence). */
export function fenceGeneration(stored: Uint8Array | null): number | undefined {
  return stored !== null && stored.length === 4 ? new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0) : undefined;
}
