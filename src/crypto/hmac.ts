/**
 * Path hashing (D9): HMAC-SHA-256 of a secret path under the `path-hmac/v1` purpose key,
 * so the store can look paths up without holding them in plaintext.
 *
 * Secrets: the HMAC key, imported once into a native `KeyObject` (a hash per request then
 * skips the key import; Node clears that copy when freeing it; `destroy()` drops it); the
 * derived bytes are wiped at once. The path itself is a secret too but arrives as a JS
 * string (it is one on the wire) and is only hashed.
 */
import { type KeyObject, createHmac, createSecretKey } from 'node:crypto';
import { CryptoError } from './errors.js';
import { derivePurposeKey } from './purpose.js';
import type { RootKey } from './rootkey.js';
import { wipe } from './wipe.js';

export class PathHasher {
  #key: KeyObject | undefined;

  /**
   * Derives the `path-hmac/v1` key from `source` (a root key), or takes `source` when it is
   * the 32-byte key itself (held by a keyring after a root-key rotation; the caller wipes its buffer).
   */
  constructor(source: RootKey | Uint8Array) {
    if (source instanceof Uint8Array) {
      if (source.length !== 32) throw new CryptoError('crypto_bad_key');
      this.#key = createSecretKey(source);
      return;
    }
    const raw = derivePurposeKey(source, 'path-hmac/v1');
    try {
      this.#key = createSecretKey(raw);
    } finally {
      wipe(raw);
    }
  }

  /** HMAC-SHA-256(path-hmac key, UTF-8 of `path`): 32 bytes. */
  hash(path: string): Buffer {
    if (this.#key === undefined) throw new CryptoError('crypto_key_destroyed');
    if (typeof path !== 'string') throw new CryptoError('crypto_bad_input');
    return createHmac('sha256', this.#key).update(path, 'utf8').digest();
  }

  destroy(): void {
    this.#key = undefined;
  }

  toJSON(): string {
    return '[PathHasher]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[PathHasher]';
  }
}
