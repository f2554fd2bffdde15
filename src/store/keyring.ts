/**
 * The keyring: every AES-256-GCM data key a store (and the encryption-as-a-service API) may
 * still need, each named by the key id written into its envelopes (D8), plus the path-HMAC
 * key (D9), which never changes so record ids survive a root-key rotation.
 *
 * Two rings: `storage` (record envelopes) and `cipher` (the cipher API; its generation is
 * the ciphertext `version`). Each ring has a current generation (new seals) and older ones
 * (opens only). Generation 1 of each ring and the path key are, until a rotation, exactly
 * the keys derived from the root (`storage/v1`, `cipher/v1`, `path-hmac/v1`): a store that
 * never rotated needs no keyring record and is read unchanged (no migration on upgrade).
 *
 * The keyring record (system record `keyring`) is ONE AEAD envelope sealed under the
 * `keyring/v1` key of the CURRENT root key, AAD = aad("spike/keyring", 0, "keyring"). Its
 * plaintext is binary, never JSON, so every key byte can be wiped:
 *   0x01 ‖ path key (32) ‖ ring storage ‖ ring cipher
 *   ring = current id (u32 BE) ‖ count (u16 BE) ‖ count × (id u32 BE ‖ key (32) ‖ reserved u64 BE)
 *
 * Use counters (NIST SP 800-38D §8.3, random 96-bit nonces): `reserved` is the persisted
 * high-water mark of seals handed out under a generation. A process seals only inside a
 * block it reserved first (reserve = read the record, raise `reserved`, write it back, in one
 * transaction), so a crash never under-counts (it over-counts by the unused rest of a block),
 * and several processes sharing one database never reuse a range. When a block would pass
 * the configured limit, the reservation instead adds a fresh random generation and makes it
 * current: the data key rotates by itself well before 2^32 seals.
 *
 * Secrets: every key (private copies in `Aead`s and `#pathKey`; the decoded plaintext of
 * the record is wiped after parsing, the encoded one after sealing; `destroy()` and
 * `dropOlder` zero what they drop).
 */
import { Aead, aad, derivePurposeKey, PathHasher, wipe, type RandomSource, type RootKey } from '../crypto/index.js';
import { Ring } from './ring.js';
import { StoreError } from './types.js';

export { Ring, type RingName } from './ring.js';

/** System record key of the keyring (an AEAD envelope: public bytes). */
export const KEYRING_RECORD = 'keyring';
/** Default most seals under one AES-GCM key (2^31: half the 2^32 random-nonce bound). */
export const DEFAULT_SEAL_LIMIT = 2 ** 31;
const KEY_BYTES = 32;
const FORMAT = 0x01;
const KEYRING_KEY_ID = 1;
const KEYRING_AAD = aad('spike/keyring', 0, 'keyring');

function derivedRing(root: RootKey, purpose: 'storage/v1' | 'cipher/v1', rng?: RandomSource): Ring {
  const ring = new Ring(1, rng);
  const key = derivePurposeKey(root, purpose);
  try {
    ring.put(1, key, 0);
  } finally {
    wipe(key);
  }
  return ring;
}

function withKek<T>(root: RootKey, fn: (a: Aead) => T): T {
  const kek = derivePurposeKey(root, 'keyring/v1');
  let a: Aead | undefined;
  try {
    a = new Aead(kek, KEYRING_KEY_ID);
    return fn(a);
  } finally {
    wipe(kek);
    a?.destroy();
  }
}

export class Keyring {
  readonly #pathKey: Uint8Array;
  readonly storage: Ring;
  readonly cipher: Ring;

  private constructor(pathKey: Uint8Array, storage: Ring, cipher: Ring) {
    this.#pathKey = Uint8Array.from(pathKey);
    this.storage = storage;
    this.cipher = cipher;
  }

  /** The keyring of a store that never rotated: generation 1 of each ring derived from `root`. */
  static derive(root: RootKey, rng?: RandomSource): Keyring {
    const path = derivePurposeKey(root, 'path-hmac/v1');
    try {
      return new Keyring(path, derivedRing(root, 'storage/v1', rng), derivedRing(root, 'cipher/v1', rng));
    } finally {
      wipe(path);
    }
  }

  /** Opens the keyring record with `root`; a record that does not open or parse is `store_integrity`. */
  static open(root: RootKey, record: Uint8Array, rng?: RandomSource): Keyring {
    let plain: Uint8Array;
    try {
      plain = withKek(root, (a) => a.open(record, KEYRING_AAD));
    } catch (e) {
      throw new StoreError('store_integrity', { cause: e });
    }
    try {
      if (plain.length < 1 + KEY_BYTES || plain[0] !== FORMAT) throw new StoreError('store_integrity');
      const s = Ring.decode(plain, 1 + KEY_BYTES, rng);
      const c = Ring.decode(plain, s.end, rng);
      if (c.end !== plain.length) throw new StoreError('store_integrity');
      return new Keyring(plain.subarray(1, 1 + KEY_BYTES), s.ring, c.ring);
    } finally {
      wipe(plain);
    }
  }

  /** The stored keyring (`record`), or the derived one when the store holds none. */
  static load(root: RootKey, record: Uint8Array | null, rng?: RandomSource): Keyring {
    return record === null ? Keyring.derive(root, rng) : Keyring.open(root, record, rng);
  }

  /** The record bytes: this keyring sealed under `root`'s `keyring/v1` key. */
  seal(root: RootKey): Uint8Array {
    const s = this.storage.encode();
    const c = this.cipher.encode();
    const plain = new Uint8Array(1 + KEY_BYTES + s.length + c.length);
    try {
      plain[0] = FORMAT;
      plain.set(this.#pathKey, 1);
      plain.set(s, 1 + KEY_BYTES);
      plain.set(c, 1 + KEY_BYTES + s.length);
      return withKek(root, (a) => a.seal(plain, KEYRING_AAD));
    } finally {
      wipe(plain, s, c);
    }
  }

  /** A path hasher over the keyring's path key (the caller destroys it). */
  pathHasher(): PathHasher {
    return new PathHasher(this.#pathKey);
  }

  destroy(): void {
    wipe(this.#pathKey);
    this.storage.destroy();
    this.cipher.destroy();
  }

  toJSON(): string {
    return '[Keyring]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[Keyring]';
  }
}
