/**
 * The store's ONE key-check record (D6): `kcv`, a fixed label sealed under the root key's
 * `kcv/v1` purpose key (src/crypto/kcv.ts). `Store.unlock` and `Store.adoptKey` decide with
 * `planKeyRecords` inside their backend's transaction: a first start writes the record
 * (and, for `adoptKey`, the adopted public record beside it); later starts check the root
 * key against what is stored. A refused key writes nothing.
 *
 * Databases written before this module also hold `store/key-check`, the stores' former
 * own check (an envelope under the `storage/v1` key). It is read only while `kcv` is
 * absent (a database that was only ever unlocked directly, never through Nexus): the root
 * key must open it (else `store_wrong_key`), and `kcv` is then written. Once `kcv` exists
 * it alone decides; the old record is left in place, unread.
 */
import { Aead, aad, checkKeyCheck, derivePurposeKey, makeKeyCheck, wipe, type RootKey } from '../crypto/index.js';
import { STORAGE_KEY_ID } from './codec.js';
import { StoreError, type AdoptionResult, type KeyAdoption } from './types.js';

/** System record key of the key-check record (public: an AEAD envelope). */
export const KEY_CHECK_RECORD = 'kcv';
/** The former store-level check of databases written before `kcv` was the only one. */
export const LEGACY_STORE_CHECK_RECORD = 'store/key-check';
const LEGACY_STORE_CHECK_AAD = aad('spike/store-check', 0, 'check');

/** Why a plan refuses the key: a refusal of the adopted record, or one of the key checks. */
type KeyRefusal<Refusal extends string> = Refusal | 'key_check_failed' | 'store_wrong_key';

export type KeyRecordsPlan<Refusal extends string> =
  /** Accepted: insert `inserts` (absent records), `record` is the adopted record as stored. */
  | { ok: true; inserts: [string, Uint8Array][]; record: Uint8Array | null }
  | { ok: false; refusal: KeyRefusal<Refusal> };

/** Every system record a plan may read (backends fetch them in one go). */
export function keyRecordKeys(adoption?: KeyAdoption<string>): string[] {
  return adoption ? [KEY_CHECK_RECORD, LEGACY_STORE_CHECK_RECORD, adoption.recordKey] : [KEY_CHECK_RECORD, LEGACY_STORE_CHECK_RECORD];
}

function legacyStoreCheckOpens(root: RootKey, blob: Uint8Array): boolean {
  const key = derivePurposeKey(root, 'storage/v1');
  let aead: Aead | undefined;
  try {
    aead = new Aead(key, STORAGE_KEY_ID);
    wipe(aead.open(blob, LEGACY_STORE_CHECK_AAD));
    return true;
  } catch {
    return false;
  } finally {
    wipe(key);
    aead?.destroy();
  }
}

/**
 * What to do with the records `found` returns (null = absent), for `unlock` (no
 * adoption) or `adoptKey`. Pure apart from sealing a fresh key-check record.
 */
export function planKeyRecords<Refusal extends string>(
  root: RootKey,
  found: (key: string) => Uint8Array | null,
  adoption?: KeyAdoption<Refusal>,
): KeyRecordsPlan<Refusal> {
  const inserts: [string, Uint8Array][] = [];
  const check = found(KEY_CHECK_RECORD);
  if (check === null) {
    const legacy = found(LEGACY_STORE_CHECK_RECORD);
    if (legacy !== null && !legacyStoreCheckOpens(root, legacy)) return { ok: false, refusal: 'store_wrong_key' };
    inserts.push([KEY_CHECK_RECORD, makeKeyCheck(root)]);
  } else if (!checkKeyCheck(root, check)) {
    return { ok: false, refusal: 'key_check_failed' };
  }
  if (!adoption) return { ok: true, inserts, record: null };
  const stored = found(adoption.recordKey);
  if (stored === null) {
    const refused = adoption.absent?.(check !== null || found(LEGACY_STORE_CHECK_RECORD) !== null) ?? null;
    if (refused !== null) return { ok: false, refusal: refused };
    inserts.push([adoption.recordKey, adoption.record]);
    return { ok: true, inserts, record: adoption.record };
  }
  const refusal = adoption.judge(stored);
  return refusal === null ? { ok: true, inserts, record: stored } : { ok: false, refusal };
}

/** The system records of a store seen from inside one exclusive transaction. */
export interface KeyRecordsTx {
  get(key: string): Uint8Array | null;
  /** False when the key already existed. */
  putIfAbsent(key: string, value: Uint8Array): boolean;
}

/** Plans and applies in one go, for stores whose transaction is synchronous and exclusive. */
export function settleKeyRecords<Refusal extends string>(
  tx: KeyRecordsTx,
  root: RootKey,
  adoption?: KeyAdoption<Refusal>,
): KeyRecordsPlan<Refusal> {
  const plan = planKeyRecords(root, (key) => tx.get(key), adoption);
  if (plan.ok) {
    // An exclusive transaction cannot lose an insert; if one did, nothing is acknowledged.
    for (const [key, value] of plan.inserts) if (!tx.putIfAbsent(key, value)) throw new StoreError('store_busy');
  }
  return plan;
}

/** `unlock`'s reading of a plan: any refusal is `store_wrong_key`. */
export function assertUnlockable(plan: KeyRecordsPlan<never>): void {
  if (!plan.ok) throw new StoreError('store_wrong_key');
}

/** `adoptKey`'s reading of a plan: the old store check throws, the others are returned. */
export function adoptionResult<Refusal extends string>(plan: KeyRecordsPlan<Refusal>): AdoptionResult<Refusal> {
  if (plan.ok) return { ok: true, record: plan.record ?? new Uint8Array(0) }; // null only in unlock plans
  if (plan.refusal === 'store_wrong_key') throw new StoreError('store_wrong_key');
  return { ok: false, refusal: plan.refusal as Refusal | 'key_check_failed' };
}
