/**
 * Keys of the encryption-as-a-service API by version (the JSON `version`, the stream's
 * first byte). With a persistent store the versions are the keyring's cipher generations
 * (src/store keyring.ts): version 1 is the `cipher/v1` key derived from the FIRST root key,
 * and every root-key rotation (or the seal limit) adds a version; encrypt uses the current
 * one and counts each encryption in the keyring (AES-GCM use counters), decrypt and rewrap
 * accept every version the keyring holds. With memory or lite (nothing persisted) the only
 * version is 1, derived from the root key in memory.
 *
 * Secrets: every key handed out is a copy the caller wipes.
 */
import { derivePurposeKey } from '../../crypto/index.js';
import { custodyOf, type Store } from '../../store/index.js';
import type { KeyState } from './state.js';

/** Versions fit the stream framing's one byte. */
export const MAX_CIPHER_VERSION = 255;

export class CipherKeys {
  readonly #keys: KeyState;
  readonly #store: Store;

  constructor(keys: KeyState, store: Store) {
    this.#keys = keys;
    this.#store = store;
  }

  /**
   * The current version and a copy of its key, one encryption counted (reserving a new
   * block of the count first when needed). Throws `key_not_installed` before the key is in.
   */
  async forEncrypt(): Promise<{ version: number; key: Uint8Array }> {
    const root = this.#keys.root();
    const custody = custodyOf(this.#store);
    if (!custody) return { version: 1, key: derivePurposeKey(root, 'cipher/v1') };
    const release = custody.promiseNow(1, 'cipher') ?? await custody.promise(1, 'cipher');
    try {
      const { id, key } = custody.keyring.cipher.takeSealKey();
      if (id > MAX_CIPHER_VERSION) {
        key.fill(0);
        throw new RangeError('cipher version out of range');
      }
      return { version: id, key };
    } finally {
      release();
    }
  }

  /** A copy of version `version`'s key, or undefined when no such version is held. */
  forDecrypt(version: number): Uint8Array | undefined {
    const root = this.#keys.root();
    const custody = custodyOf(this.#store);
    if (!custody) return version === 1 ? derivePurposeKey(root, 'cipher/v1') : undefined;
    return custody.keyring.cipher.keyCopy(version);
  }

  /** The version new ciphertexts get (for a no-op rewrap check). */
  current(): number {
    return custodyOf(this.#store)?.keyring.cipher.current ?? 1;
  }
}
