/**
 * The rollback anchor's MAC (D7): HMAC-SHA-256 under the `rollback-anchor/v1` purpose key
 * over a fixed label and the record's (version, counter, nonce) prefix (a version-1 record
 * has no nonce; its MAC covers version and counter). Only Nexus holds the key;
 * the store and the Keepers keep the records as opaque bytes. A record that does not verify
 * (tampered, another key, another format) counts as no record.
 *
 * Secret: the derived key (private copy, zeroed by `destroy()`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { derivePurposeKey, wipe, type RootKey } from '../../crypto/index.js';
import { ANCHOR_MAC_BYTES, anchorCounter, anchorPrefix } from '../../store/index.js';

const LABEL = Buffer.from('spike-ts/rollback-anchor', 'latin1');

export class AnchorKey {
  readonly #key: Uint8Array;

  constructor(root: RootKey) {
    this.#key = derivePurposeKey(root, 'rollback-anchor/v1');
  }

  /** The full record for `counter`: prefix + MAC. */
  readonly seal = (counter: bigint): Uint8Array => {
    const prefix = anchorPrefix(counter);
    return Buffer.concat([prefix, this.#mac(prefix)]);
  };

  /** The counter of `record` if its MAC verifies under this key; undefined otherwise. */
  open(record: Uint8Array | null | undefined): bigint | undefined {
    const c = anchorCounter(record);
    if (c === undefined || !record) return undefined;
    const b = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
    const want = this.#mac(b.subarray(0, b.length - ANCHOR_MAC_BYTES));
    return timingSafeEqual(want, b.subarray(b.length - ANCHOR_MAC_BYTES)) ? c : undefined;
  }

  #mac(prefix: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(LABEL).update(prefix).digest();
  }

  destroy(): void {
    wipe(this.#key);
  }

  toJSON(): string {
    return '[AnchorKey]';
  }
}
