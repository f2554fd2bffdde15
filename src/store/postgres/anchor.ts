/**
 * The postgres backend's commit counter (../anchor.ts). Several Nexus instances share the
 * database, so the counter lives in it, in the `commit_anchor` system record itself: an
 * advance reads the record, has Nexus's sealer make the next one (from the record's
 * VERIFIED counter, never from a number the database could have been given) and swaps it
 * in only if the record is still the one read (compare-and-swap, one statement); another
 * instance's advance in between makes it read again. So the counter moves one step per
 * successful swap, never back, and no value is handed out twice. Unlike sqlite it is not
 * bumped inside every write transaction — that would serialise every writer of every
 * instance on one row — but on demand: `current()` advances it after writes (Nexus calls it,
 * debounced, before each anchor push), so the stored record is always at or above what any
 * Keeper was given. Advances of one instance run one at a time. Each swap also puts the new
 * record in `spike_anchor_history` (and drops the rows more than {@link ANCHOR_HISTORY_KEEP} behind it), in
 * the same statement.
 */
import type pg from 'pg';
import { ANCHOR_HISTORY_KEEP, ANCHOR_RECORD, anchorCounter, anchorNonce, type AnchorSealer, type CommitAnchor } from '../anchor.js';
import { StoreError } from '../types.js';
import { q } from './sql.js';

/** Swap attempts of one advance before giving up (each failure means another instance advanced). */
const SWAP_ATTEMPTS = 16;

type Query = <R extends pg.QueryResultRow>(query: pg.QueryConfig<unknown[]>, write?: boolean) => Promise<pg.QueryResult<R>>;

export class PostgresAnchor implements CommitAnchor {
  readonly #query: Query;
  #seal: AnchorSealer | undefined;
  #committed: ((record: Uint8Array) => void) | undefined;
  #mark: (() => bigint) | undefined;
  #queue: Promise<void> = Promise.resolve();
  onWrite: (() => void) | undefined;

  constructor(query: Query) {
    this.#query = query;
  }

  arm(seal: AnchorSealer, committed?: (record: Uint8Array) => void, mark?: () => bigint): void {
    this.#seal = seal;
    this.#committed = committed;
    this.#mark = mark;
  }

  disarm(): void {
    this.#seal = undefined;
    this.#committed = undefined;
    this.#mark = undefined;
  }

  /** After a committed write transaction (the store calls it). */
  noteWrite(): void {
    if (this.#seal) this.onWrite?.();
  }

  async read(): Promise<Uint8Array | null> {
    const v = (await this.#query<{ value: Buffer }>(q('getSystem', [ANCHOR_RECORD]))).rows[0]?.value;
    return v ? new Uint8Array(v) : null;
  }

  async recorded(counters: readonly bigint[]): Promise<Map<bigint, Uint8Array>> {
    const out = new Map<bigint, Uint8Array>();
    if (counters.length === 0) return out;
    const r = await this.#query<{ counter: string; record: Buffer }>(q('recordedAnchors', [counters.map((c) => c.toString())]));
    for (const row of r.rows) {
      const nonce = anchorNonce(row.record);
      if (nonce) out.set(BigInt(row.counter), Uint8Array.from(nonce));
    }
    return out;
  }

  current(): Promise<Uint8Array | null> {
    return this.#seal ? this.advance(0n) : this.read();
  }

  advance(min: bigint): Promise<Uint8Array> {
    const run = this.#queue.then(() => this.#advance(min));
    this.#queue = run.then(() => undefined, () => undefined);
    return run;
  }

  async #advance(min: bigint): Promise<Uint8Array> {
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      const seal = this.#seal;
      if (!seal) throw new StoreError('store_locked');
      // Another connection's fresher read may be applied before this one answers (a slow
      // answer is no rollback: the sealer holds it only to what was known when it was issued).
      const issuedAt = this.#mark?.();
      const stored = await this.read();
      const record = Buffer.from(seal(stored, min, issuedAt));
      const counter = anchorCounter(record);
      if (counter === undefined) throw new StoreError('store_integrity');
      const r = stored === null
        ? await this.#query<{ n: number }>(q('putAnchorIfAbsent', [record, counter.toString()]), true)
        : await this.#query<{ n: number }>(q('swapAnchor', [record, Buffer.from(stored), counter.toString(), (counter - ANCHOR_HISTORY_KEEP).toString()]), true);
      if (r.rows[0]?.n === 1) {
        this.#committed?.(new Uint8Array(record));
        return new Uint8Array(record);
      }
    }
    throw new StoreError('store_busy');
  }
}
