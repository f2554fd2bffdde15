/**
 * The store's commit counter for rollback detection: one public system record,
 * `commit_anchor`, holding `[version 1][counter: u64 big-endian][MAC: 32 bytes]`.
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

/** System record key of the anchor. */
export const ANCHOR_RECORD = 'commit_anchor';

export const ANCHOR_VERSION = 1;
/** Bytes of the authenticated prefix (version + counter). */
export const ANCHOR_PREFIX_BYTES = 9;
export const ANCHOR_MAC_BYTES = 32;
export const ANCHOR_RECORD_BYTES = ANCHOR_PREFIX_BYTES + ANCHOR_MAC_BYTES;
/** Largest counter (fits a postgres bigint and a JSON-safe log field). */
export const MAX_ANCHOR_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Builds the record that follows `stored` (null: none yet): a counter above the stored
 * one's verified counter and at least `min`, sealed (Nexus: prefix + MAC). May throw (the
 * write that needed it then fails).
 */
export type AnchorSealer = (stored: Uint8Array | null, min: bigint) => Uint8Array;

/** The authenticated prefix of the record for `counter`. */
export function anchorPrefix(counter: bigint): Buffer {
  if (counter < 0n || counter > MAX_ANCHOR_COUNTER) throw new RangeError('anchor counter out of range');
  const b = Buffer.alloc(ANCHOR_PREFIX_BYTES);
  b[0] = ANCHOR_VERSION;
  b.writeBigUInt64BE(counter, 1);
  return b;
}

/** The counter a record claims (NOT verified), or undefined when it is not an anchor record. */
export function anchorCounter(record: Uint8Array | null | undefined): bigint | undefined {
  if (!record || record.length !== ANCHOR_RECORD_BYTES || record[0] !== ANCHOR_VERSION) return undefined;
  const c = Buffer.from(record.buffer, record.byteOffset, record.byteLength).readBigUInt64BE(1);
  return c <= MAX_ANCHOR_COUNTER ? c : undefined;
}

/**
 * A backend's commit counter. Until `arm` (Nexus has the key and the rollback check passed)
 * writes do not move it; after, every acknowledged write is covered by `current()`.
 */
export interface CommitAnchor {
  /**
   * From now on writes advance the counter, sealed by `seal`; `committed` is told each record
   * the store wrote once its transaction committed (so a copy put back even one write behind
   * is older than what Nexus knows is stored).
   */
  arm(seal: AnchorSealer, committed?: (record: Uint8Array) => void): void;
  /** Stops advancing (Nexus refuses to serve, or is closing). */
  disarm(): void;
  /** The stored record (null: none yet), as the database holds it. */
  read(): Promise<Uint8Array | null>;
  /** A record that covers every write acknowledged before the call (sqlite: the stored one; postgres: advanced now). */
  current(): Promise<Uint8Array | null>;
  /** Moves the counter to at least `min` in its own transaction (armed only); returns the stored record. */
  advance(min: bigint): Promise<Uint8Array>;
  /** Called after each acknowledged write while armed (Nexus schedules the anchor push); must not throw. */
  onWrite: (() => void) | undefined;
}
