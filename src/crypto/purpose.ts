/**
 * Purpose keys (D7): every AES/HMAC key is derived from the root scalar with
 * HKDF-SHA-256 (RFC 5869, `node:crypto.hkdfSync`); the scalar itself is never a key.
 *
 *   key = HKDF-SHA-256(IKM = 32-byte canonical root key,
 *                      salt = ASCII "spike-ts/root-key",
 *                      info = ASCII purpose label, e.g. "storage/v1",
 *                      L = 32)
 *
 * Storage and encryption-as-a-service get different labels, so they never share a key.
 *
 * Secrets: the root key copy (wiped in `finally` here) and the derived key (returned;
 * the caller wipes it). Node copies the IKM into OpenSSL for the call; that copy is out
 * of our reach.
 */
import { hkdfSync } from 'node:crypto';
import { CryptoError } from './errors.js';
import type { RootKey } from './rootkey.js';
import { wipe } from './wipe.js';

type Purpose = 'storage/v1' | 'cipher/v1' | 'kcv/v1' | 'path-hmac/v1' | 'bootstrap-verify/v1' | 'audit-path/v1' | 'audit-mac/v1'
  | 'rollback-anchor/v1' | 'keyring/v1' | 'sharing-record/v1';

/**
 * `audit-path/v1` hashes target paths in the audit trail; `audit-mac/v1` authenticates its entries (src/audit);
 * `rollback-anchor/v1` authenticates the store's commit counter and the copies the Keepers hold (src/nexus/anchor);
 * `keyring/v1` seals the store's keyring record (src/store/keyring.ts) after a root-key rotation;
 * `sharing-record/v1` tags the key sharing records (src/nexus/keys/sharing-tag.ts).
 */
export const PURPOSES: readonly Purpose[] = [
  'storage/v1', 'cipher/v1', 'kcv/v1', 'path-hmac/v1', 'bootstrap-verify/v1', 'audit-path/v1', 'audit-mac/v1',
  'rollback-anchor/v1', 'keyring/v1', 'sharing-record/v1',
];

const PURPOSE_KEY_BYTES = 32;
const SALT = new TextEncoder().encode('spike-ts/root-key');

/**
 * Plain HKDF-SHA-256 (RFC 5869): extract-then-expand to `length` bytes. The project's
 * one HKDF entry point (and the one the RFC 5869 known-answer tests exercise).
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 1 || length > 255 * 32) throw new CryptoError('crypto_bad_input');
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/** The 32-byte key for `purpose`; the caller must wipe it. */
export function derivePurposeKey(root: RootKey, purpose: Purpose): Uint8Array {
  if (!PURPOSES.includes(purpose)) throw new CryptoError('crypto_bad_input');
  const ikm = root.bytes();
  try {
    return hkdfSha256(ikm, SALT, new TextEncoder().encode(purpose), PURPOSE_KEY_BYTES);
  } finally {
    wipe(ikm);
  }
}
