/**
 * What a persistent backend (sqlite, postgres) gives the key custody (key-custody.ts): one
 * exclusive transaction over the key records, and the scan and swap of sealed blobs that
 * re-encryption needs. In a module of its own so the custody's helpers (switch-settle.ts)
 * can name it without importing the custody.
 */
import type { SealedCell } from './codec.js';

/** A stored blob whose envelope names an older key id. */
export interface StaleBlob {
  cell: SealedCell;
  blob: Buffer;
}

/** A re-sealed blob, to be written only if the cell still holds `old` (byte for byte). */
export interface BlobSwap extends StaleBlob {
  old: Buffer;
}

/** Key-record writes planned inside one transaction. */
export interface KeyRecordsUpdate<T> {
  result: T;
  writes: [string, Uint8Array][];
}

/** The three primitives a backend gives the key custody. */
export interface CustodyBackend {
  /**
   * ONE transaction, exclusive among key-record writers: reads `keys`, calls `plan` (which
   * may throw: nothing is written) and upserts the records it returns.
   */
  updateKeyRecords<T>(keys: string[], plan: (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>): Promise<T>;
  /** Up to `limit` sealed blobs (any table) whose envelope key id is not `currentId`. */
  scanStale(currentId: number, limit: number): Promise<StaleBlob[]>;
  /** ONE transaction: writes each swap whose cell still holds its `old` bytes; returns how many were written. */
  replaceBlobs(swaps: BlobSwap[]): Promise<number>;
}
