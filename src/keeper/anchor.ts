/**
 * The Keeper's rollback anchor: the latest opaque bytes Nexus sent on `/v1/store/anchor`,
 * kept in memory only (never written anywhere), like the share.
 *
 * The Keeper cannot check them (Nexus authenticates them with a key derived from the root
 * key, which the Keeper never sees), so it keeps the LATEST it was given, not the largest:
 * Nexus takes the highest value that verifies across all Keepers. Size is bounded
 * ({@link MAX_ANCHOR_BYTES}); a Keeper restarted empty holds none.
 */
import { MAX_ANCHOR_BYTES } from '../protocol/index.js';

export class AnchorHolder {
  #bytes: Buffer | undefined;

  /** Replaces the held anchor with a copy of `b` (1…MAX_ANCHOR_BYTES bytes; others are ignored: false). */
  set(b: Uint8Array): boolean {
    if (b.length === 0 || b.length > MAX_ANCHOR_BYTES) return false;
    this.#bytes = Buffer.from(b);
    return true;
  }

  /** The held anchor as base64, or undefined. */
  base64(): string | undefined {
    return this.#bytes?.toString('base64');
  }

  clear(): void {
    this.#bytes = undefined;
  }
}
