/**
 * AES-256-GCM envelopes bound to their record (D8).
 *
 * Envelope layout (all binary):
 *   0x01 (format version) ‖ key id (uint32 BE) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)
 * The GCM associated data is the 5-byte header (version ‖ key id) followed by the
 * caller's AAD, normally `aad(recordKind, recordId, version, field)`. So a ciphertext
 * moved to another row, field or version, or relabelled with another key id, fails to
 * open. Every failure to open — bad length, bad version byte, other key id, wrong key,
 * wrong AAD, any flipped bit — is the ONE error `CryptoError('crypto_decrypt_failed')`,
 * thrown only after the tag check where one is possible, and saying nothing about why.
 *
 * Nonces are 96-bit random per seal: keep well under 2^32 seals per key (NIST SP 800-38D
 * §8.3); the key id names the key that sealed each envelope.
 *
 * Secrets: the AES key and plaintexts (returned to the caller). An `Aead` imports its key
 * once into a native `KeyObject` (the constructor does NOT wipe the caller's buffer), so a
 * seal or open does not copy the key from JS memory again: a hot-path cost (issue 17).
 * Node keeps that copy in native memory it clears when freeing it; `destroy()` drops the
 * reference (the copy is cleared once collected) and refuses any later use.
 */
import { type KeyObject, createCipheriv, createDecipheriv, createSecretKey } from 'node:crypto';
import { CryptoError } from './errors.js';
import { systemRandom, type RandomSource } from './random.js';
import { wipe } from './wipe.js';

const AEAD_FORMAT_VERSION = 0x01;
const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
const AEAD_HEADER_BYTES = 1 + 4;
/** Smallest valid envelope (empty plaintext). */
export const AEAD_MIN_ENVELOPE_BYTES = AEAD_HEADER_BYTES + AEAD_NONCE_BYTES + AEAD_TAG_BYTES;

/**
 * Low-level AES-256-GCM with an explicit nonce (used by `Aead` and by the NIST known-
 * answer tests). Returns ciphertext ‖ 16-byte tag. Never call it with a repeated
 * (key, nonce) pair.
 */
export function gcmSeal(key: Uint8Array | KeyObject, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  return sealAfter(0, key, nonce, plaintext, aad);
}

/**
 * {@link gcmSeal} into one new buffer with `headroom` bytes left free before the ciphertext
 * (the envelope header and nonce, written by {@link Aead.seal}): one copy per seal instead of
 * three, into Node's shared buffer pool when small (public bytes; issue 17).
 */
function sealAfter(headroom: number, key: Uint8Array | KeyObject, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  if (keyBytes(key) !== AEAD_KEY_BYTES || nonce.length !== AEAD_NONCE_BYTES) throw new CryptoError('crypto_bad_key');
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  c.setAAD(aad);
  const body = c.update(plaintext);
  const fin = c.final();
  const tag = c.getAuthTag();
  const out = Buffer.allocUnsafe(headroom + body.length + fin.length + tag.length);
  out.set(body, headroom);
  out.set(fin, headroom + body.length);
  out.set(tag, headroom + body.length + fin.length);
  return out;
}

/**
 * Low-level AES-256-GCM open of ciphertext ‖ tag with an explicit nonce. Any failure is
 * `crypto_decrypt_failed`. The plaintext is released only after the tag verified.
 */
export function gcmOpen(key: Uint8Array | KeyObject, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (keyBytes(key) !== AEAD_KEY_BYTES || nonce.length !== AEAD_NONCE_BYTES || sealed.length < AEAD_TAG_BYTES) {
    throw new CryptoError('crypto_decrypt_failed');
  }
  const ctLen = sealed.length - AEAD_TAG_BYTES;
  let body: Buffer | undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: AEAD_TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(ctLen));
    body = d.update(sealed.subarray(0, ctLen));
    const fin = d.final(); // throws on a bad tag
    if (fin.length === 0) {
      // GCM's final never yields bytes: hand out the update's own memory, no second copy.
      const plain = new Uint8Array(body.buffer, body.byteOffset, body.length);
      body = undefined;
      return plain;
    }
    const out = new Uint8Array(body.length + fin.length);
    out.set(body, 0);
    out.set(fin, body.length);
    return out;
  } catch {
    throw new CryptoError('crypto_decrypt_failed');
  } finally {
    wipe(body);
  }
}

/** Byte length of a raw key or a secret `KeyObject` (0 for any other kind). */
function keyBytes(key: Uint8Array | KeyObject): number {
  if (key instanceof Uint8Array) return key.length;
  return key.type === 'secret' ? key.symmetricKeySize ?? 0 : 0;
}

/** An AES-256-GCM key with its key id, sealing and opening D8 envelopes. */
export class Aead {
  readonly keyId: number;
  #key: KeyObject | undefined;
  #rng: RandomSource;

  /** Imports `key` (32 bytes); `keyId` is a uint32. The caller still wipes its own buffer. */
  constructor(key: Uint8Array, keyId: number, rng: RandomSource = systemRandom) {
    if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_BYTES) throw new CryptoError('crypto_bad_key');
    if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffffffff) throw new CryptoError('crypto_bad_input');
    this.#key = createSecretKey(key);
    this.keyId = keyId;
    this.#rng = rng;
  }

  /** Seals `plaintext` bound to `aad`; returns a new envelope. */
  seal(plaintext: Uint8Array, aad: Uint8Array): Buffer {
    const key = this.#live();
    const header = envelopeHeader(this.keyId);
    const nonce = this.#rng(AEAD_NONCE_BYTES);
    if (nonce.length !== AEAD_NONCE_BYTES) throw new CryptoError('crypto_bad_input');
    const out = sealAfter(AEAD_HEADER_BYTES + AEAD_NONCE_BYTES, key, nonce, plaintext, concat(header, aad));
    out.set(header, 0);
    out.set(nonce, AEAD_HEADER_BYTES);
    return out;
  }

  /** Opens an envelope sealed with this key id and `aad`; any failure is `crypto_decrypt_failed`. */
  open(envelope: Uint8Array, aad: Uint8Array): Uint8Array {
    const key = this.#live();
    if (!(envelope instanceof Uint8Array) || envelope.length < AEAD_MIN_ENVELOPE_BYTES) {
      throw new CryptoError('crypto_decrypt_failed');
    }
    const header = envelope.subarray(0, AEAD_HEADER_BYTES);
    // A wrong version or key id is rejected here, but would fail the tag anyway (the
    // header is part of the associated data); the error is the same either way.
    if (header[0] !== AEAD_FORMAT_VERSION || envelopeKeyId(envelope) !== this.keyId) {
      throw new CryptoError('crypto_decrypt_failed');
    }
    const nonce = envelope.subarray(AEAD_HEADER_BYTES, AEAD_HEADER_BYTES + AEAD_NONCE_BYTES);
    return gcmOpen(key, nonce, envelope.subarray(AEAD_HEADER_BYTES + AEAD_NONCE_BYTES), concat(header, aad));
  }

  /** Drops the key (its native copy is cleared once freed); later use throws `crypto_key_destroyed`. Idempotent. */
  destroy(): void {
    this.#key = undefined;
  }

  #live(): KeyObject {
    if (this.#key === undefined) throw new CryptoError('crypto_key_destroyed');
    return this.#key;
  }

  toJSON(): string {
    return '[Aead]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[Aead]';
  }
}

/**
 * The key id of an envelope (public header field), or `undefined` when the buffer is
 * too short or has an unknown version — lets a reader pick the key to open it with.
 */
export function envelopeKeyId(envelope: Uint8Array): number | undefined {
  if (envelope.length < AEAD_MIN_ENVELOPE_BYTES || envelope[0] !== AEAD_FORMAT_VERSION) return undefined;
  return envelope[1]! * 0x100_0000 + ((envelope[2]! << 16) | (envelope[3]! << 8) | envelope[4]!);
}

function envelopeHeader(keyId: number): Buffer {
  const h = Buffer.allocUnsafe(AEAD_HEADER_BYTES);
  h[0] = AEAD_FORMAT_VERSION;
  h.writeUInt32BE(keyId, 1);
  return h;
}

/**
 * `a ‖ b`, for associated data (public bytes): small results come from Node's shared buffer
 * pool, not an allocation of their own each.
 */
function concat(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const PART_STRING = 0x01;
const PART_BYTES = 0x02;
const PART_NUMBER = 0x03;

/**
 * Unambiguous associated data from parts (record kind, record id, version, field …):
 * each part is a type byte, then
 *   string  → 0x01 ‖ uint32 BE byte length ‖ UTF-8 bytes
 *   bytes   → 0x02 ‖ uint32 BE length ‖ bytes
 *   number  → 0x03 ‖ int64 BE (must be a safe integer)
 * so ("ab","c") and ("a","bc"), or 1 and "1", never encode alike.
 */
export function aad(...parts: (string | Uint8Array | number)[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const p of parts) {
    if (typeof p === 'number') {
      if (!Number.isSafeInteger(p)) throw new CryptoError('crypto_bad_input');
      const c = new Uint8Array(9);
      c[0] = PART_NUMBER;
      new DataView(c.buffer).setBigInt64(1, BigInt(p), false);
      chunks.push(c);
    } else {
      const body = typeof p === 'string' ? enc.encode(p) : p;
      if (!(body instanceof Uint8Array)) throw new CryptoError('crypto_bad_input');
      const c = new Uint8Array(5 + body.length);
      c[0] = typeof p === 'string' ? PART_STRING : PART_BYTES;
      new DataView(c.buffer).setUint32(1, body.length, false);
      c.set(body, 5);
      chunks.push(c);
    }
  }
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
