/**
 * Key-check value (D6, second check): a fixed public label sealed under the `kcv/v1`
 * purpose key. Stored beside the commitments at bootstrap; after a reconstruction,
 * `checkKeyCheck` proves the rebuilt key is the right one before Nexus serves.
 *
 * Record = an ordinary D8 envelope (key id `KCV_KEY_ID`) of the label
 * "spike-ts key check v1" with AAD = aad('kcv', 'root-key', 1).
 *
 * Secrets: the derived kcv key (wiped in `finally`). The label and record are public.
 */
import { timingSafeEqual } from 'node:crypto';
import { Aead, aad } from './aead.js';
import { CryptoError } from './errors.js';
import { derivePurposeKey } from './purpose.js';
import type { RootKey } from './rootkey.js';
import { wipe } from './wipe.js';

const KCV_KEY_ID = 1;
const KCV_LABEL = new TextEncoder().encode('spike-ts key check v1');
const KCV_AAD = aad('kcv', 'root-key', 1);

function withKcvAead<T>(root: RootKey, fn: (a: Aead) => T): T {
  const key = derivePurposeKey(root, 'kcv/v1');
  let a: Aead | undefined;
  try {
    a = new Aead(key, KCV_KEY_ID);
    return fn(a);
  } finally {
    wipe(key);
    a?.destroy();
  }
}

/** Seals the fixed label under `kcv/v1` (a fresh random nonce each call). */
export function makeKeyCheck(root: RootKey): Uint8Array {
  return withKcvAead(root, (a) => a.seal(KCV_LABEL, KCV_AAD));
}

/** True iff `record` opens under `root`'s kcv key and holds the label; never throws on a bad record. */
export function checkKeyCheck(root: RootKey, record: Uint8Array): boolean {
  return withKcvAead(root, (a) => {
    let pt: Uint8Array;
    try {
      pt = a.open(record, KCV_AAD);
    } catch (e) {
      if (e instanceof CryptoError && e.code === 'crypto_decrypt_failed') return false;
      throw e;
    }
    return pt.length === KCV_LABEL.length && timingSafeEqual(pt, KCV_LABEL);
  });
}
