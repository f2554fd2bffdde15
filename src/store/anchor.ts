/**
 * The store's commit counter for rollback detection: one public system record,
 * `commit_anchor`, holding `[version 2][counter: u64 big-endian][nonce: 16 bytes][MAC: 32
 * bytes]` (version 1, from before the nonce, has no nonce and is still read).
 *
 * The nonce makes every record unique: two records with the same counter are two histories
 * (an older copy put back and written on again). The store also keeps the nonce of each record
 * it writes in a short history, by counter ({@link ANCHOR_HISTORY_KEEP}), so a process that saw
 * the record at counter n can ask whether the store's history still holds that very record at
 * n once the store has moved past it: the counters alone do not bind the history.
 *
 * The MAC is computed by Nexus with a key derived from the root key (the store never sees
 * that key: it is handed a `seal(stored, min)` function once armed), so someone who can
 * write the database cannot raise the counter of an old copy to hide a rollback. The store
 * never derives the next counter itself: it hands the stored record to the sealer, which
 * continues from its MAC-VERIFIED counter only (a planted record, however large its
 * counter, is never trusted: Nexus's nexus/anchor/sealer.ts). Nexus verifies the MAC again
 * when it compares the store with the Keepers.
 *
 * How the counter moves with writes is the backend's job (its {@link CommitAnchor}):
 * sqlite advances it once per group-commit batch inside the batch's transaction; postgres
 * advances it on demand in one monotonic statement (several instances share the row).
 */

import { randomBytes } from 'node:crypto';

/** System record key of the anchor. */
export const ANCHOR_RECORD = 'commit_anchor';

/** The version written: counter and nonce. */
export const ANCHOR_VERSION = 2;
/** The first version: counter only (read, never written). */
const ANCHOR_VERSION_1 = 1;
export const ANCHOR_NONCE_BYTES = 16;
/** Bytes of the authenticated prefix (version + counter + nonce). */
export const ANCHOR_PREFIX_BYTES = 9 + ANCHOR_NONCE_BYTES;
export const ANCHOR_MAC_BYTES = 32;
export const ANCHOR_RECORD_BYTES = ANCHOR_PREFIX_BYTES + ANCHOR_MAC_BYTES;
/** Version 1's record: version, counter, MAC. */
const ANCHOR_V1_BYTES = 9 + ANCHOR_MAC_BYTES;
/**
 * Records the store's history keeps behind the newest (at least): far more batches than are
 * written between two looks of a process at the store (5 s), so a history that diverged from
 * what a process saw is still on record when it looks.
 */
export const ANCHOR_HISTORY_KEEP = 100_000n;
/** Largest counter (fits a postgres bigint and a JSON-safe log field). */
export const MAX_ANCHOR_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Builds the record that follows `stored` (null: none yet): a counter above the stored
 * one's verified counter and at least `min`, sealed (Nexus: prefix + MAC). May throw (the
 * write that needed it then fails). `issuedAt`: what the sealer's `mark` said when `stored`
 * was read, for a read that may be answered after fresher ones (postgres): `stored` is only
 * held to that, not to what was learnt meanwhile.
 */
export type AnchorSealer = (stored: Uint8Array | null, min: bigint, issuedAt?: bigint) => Uint8Array;

/** The authenticated prefix of the record for `counter` with a fresh random nonce (or `nonce`). */
export function anchorPrefix(counter: bigint, nonce: Uint8Array = randomBytes(ANCHOR_NONCE_BYTES)): Buffer {
  if (counter < 0n || counter > MAX_ANCHOR_COUNTER) throw new RangeError('anchor counter out of range');
  if (nonce.length !== ANCHOR_NONCE_BYTES) throw new RangeError('anchor nonce length');
  const b = Buffer.alloc(ANCHOR_PREFIX_BYTES);
  b[0] = ANCHOR_VERSION;
  b.writeBigUInt64BE(counter, 1);
  b.set(nonce, 9);
  return b;
}

/** The counter a record claims (NOT verified), or undefined when it is not an anchor record. */
export function anchorCounter(record: Uint8Array | null | undefined): bigint | undefined {
  if (!record) return undefined;
  const shaped = record.length === ANCHOR_RECORD_BYTES ? record[0] === ANCHOR_VERSION : record.length === ANCHOR_V1_BYTES && record[0] === ANCHOR_VERSION_1;
  if (!shaped) return undefined;
  const c = Buffer.from(record.buffer, record.byteOffset, record.byteLength).readBigUInt64BE(1);
  return c <= MAX_ANCHOR_COUNTER ? c : undefined;
}

/** The nonce of a version-2 record (NOT verified), or undefined (version 1 has none). */
export function anchorNonce(record: Uint8Array | null | undefined): Buffer | undefined {
  if (!record || record.length !== ANCHOR_RECORD_BYTES || record[0] !== ANCHOR_VERSION) return undefined;
  return Buffer.from(record.buffer, record.byteOffset + 9, ANCHOR_NONCE_BYTES);
}

/** True when `a` and `b` hold the same bytes (null only equals null). */
export function sameAnchorRecord(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a === null || b === null ? a === b : Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * A backend's commit counter. Until `arm` (Nexus has the key and the rollback check passed)
 * writes do not move it; after, every acknowledged write is covered by `current()`.
 */
export interface CommitAnchor {
  /**
   * From now on writes advance the counter, sealed by `seal`; `committed` is told each record
   * the store wrote once its transaction committed (so a copy put back even one write behind
   * is older than what Nexus knows is stored); `mark` tells what Nexus knows before a read that
   * is handed to `seal` later (its `issuedAt`).
   */
  arm(seal: AnchorSealer, committed?: (record: Uint8Array) => void, mark?: () => bigint): void;
  /** Stops advancing (Nexus refuses to serve, or is closing). */
  disarm(): void;
  /** The stored record (null: none yet), as the database holds it. */
  read(): Promise<Uint8Array | null>;
  /** A record that covers every write acknowledged before the call (sqlite: the stored one; postgres: advanced now). */
  current(): Promise<Uint8Array | null>;
  /** Moves the counter to at least `min` in its own transaction (armed only); returns the stored record. */
  advance(min: bigint): Promise<Uint8Array>;
  /**
   * The nonces ({@link anchorNonce}) of the records the store's history holds at these
   * counters (a counter missing from the answer: none on record, e.g. older than
   * {@link ANCHOR_HISTORY_KEEP} behind the newest).
   */
  recorded(counters: readonly bigint[]): Promise<Map<bigint, Uint8Array>>;
  /** Called after each acknowledged write while armed (Nexus schedules the anchor push); must not throw. */
  onWrite: (() => void) | undefined;
}
