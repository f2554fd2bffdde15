/**
 * Path hashing (D9): HMAC-SHA-256 of a secret path under the `path-hmac/v1` purpose key,
 * so the store can look paths up without holding them in plaintext.
 *
 * Secrets: the HMAC key (private copy, zeroed by `destroy()`); the path itself is a
 * secret too but arrives as a JS string (it is one on the wire) and is only hashed.
 */
import { createHmac } from 'node:crypto';
import { CryptoError } from './errors.js';
import { derivePurposeKey } from './purpose.js';
import type { RootKey } from './rootkey.js';
import { wipe } from './wipe.js';

export class PathHasher {
  #key: Uint8Array;
  #destroyed = false;

  /**
   * Derives the `path-hmac/v1` key from `source` (a root key), or copies `source` when it is
   * the 32-byte key itself (held by a keyring after a root-key rotation; the caller wipes its buffer).
   */
  constructor(source: RootKey | Uint8Array) {
    if (source instanceof Uint8Array) {
      if (source.length !== 32) throw new CryptoError('crypto_bad_key');
      this.#key = Uint8Array.from(source);
    } else {
      this.#key = derivePurposeKey(source, 'path-hmac/v1');
    }
  }

  /** HMAC-SHA-256(path-hmac key, UTF-8 of `path`): 32 bytes. */
  hash(path: string): Buffer {
    if (this.#destroyed) throw new CryptoError('crypto_key_destroyed');
    if (typeof path !== 'string') throw new CryptoError('crypto_bad_input');
    return createHmac('sha256', this.#key).update(path, 'utf8').digest();
  }

  destroy(): void {
    wipe(this.#key);
    this.#destroyed = true;
  }

  toJSON(): string {
    return '[PathHasher]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[PathHasher]';
  }
}
