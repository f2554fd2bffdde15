/**
 * The sqlite backend's history of rollback anchor records (../anchor.ts): the counter and
 * nonce of each record, so a process can ask which record the store held at a counter.
 *
 * Written in every group-commit batch, so it must not cost a page of its own per batch: the
 * newest entries (up to {@link CHUNK} of 24 bytes: counter, nonce) sit in one more `system`
 * row, `anchor_ring`, beside `commit_anchor` in the same small table, whose page the batch
 * writes anyway. A full ring moves into `anchor_history` as one row keyed by its first counter,
 * and rows more than ANCHOR_HISTORY_KEEP behind the newest counter go then (or at once, on a
 * jump that far: an accepted rollback, whose older history must bind nothing). A counter at or
 * below the newest entry (counting started again from an adopted record) clears the history.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { ANCHOR_HISTORY_KEEP, ANCHOR_NONCE_BYTES } from '../anchor.js';

/** System record key of the newest entries. */
const RING_RECORD = 'anchor_ring';
/** Bytes per entry: counter (u64, big-endian) and nonce. */
const ENTRY = 8 + ANCHOR_NONCE_BYTES;
/** Entries per ring, and per `anchor_history` row. */
const CHUNK = 64;

export class SqliteAnchorHistory {
  readonly #get: BetterSqlite3.Statement;
  readonly #put: BetterSqlite3.Statement;
  readonly #flush: BetterSqlite3.Statement;
  readonly #prune: BetterSqlite3.Statement;
  readonly #clear: BetterSqlite3.Statement;
  readonly #chunkFor: BetterSqlite3.Statement;

  constructor(db: BetterSqlite3.Database) {
    this.#get = db.prepare('SELECT value FROM system WHERE key = ?').pluck();
    this.#put = db.prepare('INSERT OR REPLACE INTO system (key, value) VALUES (?, ?)');
    this.#flush = db.prepare('INSERT OR REPLACE INTO anchor_history (first, entries) VALUES (?, ?)');
    this.#prune = db.prepare('DELETE FROM anchor_history WHERE first < ?');
    this.#clear = db.prepare('DELETE FROM anchor_history');
    this.#chunkFor = db.prepare('SELECT entries FROM anchor_history WHERE first <= ? ORDER BY first DESC LIMIT 1').pluck();
  }

  /** Inside the transaction that writes the record at `counter` with `nonce`. */
  append(counter: bigint, nonce: Uint8Array): void {
    let ring = this.#ring();
    const last = ring.length >= ENTRY ? ring.readBigUInt64BE(ring.length - ENTRY) : undefined;
    const oldest = counter - ANCHOR_HISTORY_KEEP;
    if (last !== undefined && counter <= last) {
      // The counter started again below the history (a record that did not verify was adopted
      // as the base, e.g. after a crash between a root switch and the re-key): the history
      // before it is of records that bind nothing now.
      ring = Buffer.alloc(0);
      this.#clear.run();
    } else if (last !== undefined && last < oldest) {
      ring = Buffer.alloc(0); // a jump past the whole history: nothing before it binds
      this.#prune.run(oldest);
    } else if (ring.length >= CHUNK * ENTRY) {
      this.#flush.run(ring.readBigUInt64BE(0), ring);
      if (oldest > 0n) this.#prune.run(oldest);
      ring = Buffer.alloc(0);
    }
    const entry = Buffer.alloc(ENTRY);
    entry.writeBigUInt64BE(counter, 0);
    entry.set(nonce, 8);
    this.#put.run(RING_RECORD, Buffer.concat([ring, entry]));
  }

  /** The nonce held at each of `counters` (absent: none on record). */
  lookup(counters: readonly bigint[]): Map<bigint, Uint8Array> {
    const out = new Map<bigint, Uint8Array>();
    const ring = this.#ring();
    for (const c of counters) {
      const found = find(ring, c) ?? find(this.#chunkFor.get(c) as Buffer | undefined, c);
      if (found) out.set(c, found);
    }
    return out;
  }

  #ring(): Buffer {
    const v = this.#get.get(RING_RECORD) as Buffer | undefined;
    return v && v.length % ENTRY === 0 ? v : Buffer.alloc(0);
  }
}

/** The nonce of `counter` among `entries` (malformed: none). */
function find(entries: Buffer | undefined, counter: bigint): Uint8Array | undefined {
  if (!entries || entries.length % ENTRY !== 0) return undefined;
  for (let at = 0; at < entries.length; at += ENTRY) {
    if (entries.readBigUInt64BE(at) === counter) return Uint8Array.from(entries.subarray(at + 8, at + ENTRY));
  }
  return undefined;
}
