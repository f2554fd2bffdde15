/**
 * The postgres backend's commit counter (../anchor.ts). Several Nexus instances share the
 * database, so the counter lives in it: `spike_counters['commit_anchor']` is advanced by one
 * atomic upsert, and the sealed record is stored only if it is higher than the stored one
 * (one statement each; the record never moves back). Unlike sqlite it is not bumped inside
 * every write transaction — that would serialise every writer of every instance on one row —
 * but on demand: `current()` advances it after writes (Nexus calls it, debounced, before
 * each anchor push), so the stored record is always at or above what any Keeper was given.
 */
import type pg from 'pg';
import { ANCHOR_RECORD, MAX_ANCHOR_COUNTER, type AnchorSealer, type CommitAnchor } from '../anchor.js';
import { StoreError } from '../types.js';
import { q } from './sql.js';

type Query = <R extends pg.QueryResultRow>(query: pg.QueryConfig<unknown[]>, write?: boolean) => Promise<pg.QueryResult<R>>;

export class PostgresAnchor implements CommitAnchor {
  readonly #query: Query;
  #seal: AnchorSealer | undefined;
  onWrite: (() => void) | undefined;

  constructor(query: Query) {
    this.#query = query;
  }

  arm(seal: AnchorSealer): void {
    this.#seal = seal;
  }

  disarm(): void {
    this.#seal = undefined;
  }

  /** After a committed write transaction (the store calls it). */
  noteWrite(): void {
    if (this.#seal) this.onWrite?.();
  }

  async read(): Promise<Uint8Array | null> {
    const v = (await this.#query<{ value: Buffer }>(q('getSystem', [ANCHOR_RECORD]))).rows[0]?.value;
    return v ? new Uint8Array(v) : null;
  }

  current(): Promise<Uint8Array | null> {
    return this.#seal ? this.advance(0n) : this.read();
  }

  async advance(min: bigint): Promise<Uint8Array> {
    const seal = this.#seal;
    if (!seal) throw new StoreError('store_locked');
    const r = await this.#query<{ value: string }>(q('advanceAnchor', [min.toString()]), true);
    const c = BigInt(r.rows[0]?.value ?? '0');
    if (c < 1n || c > MAX_ANCHOR_COUNTER) throw new StoreError('store_integrity');
    const record = seal(c);
    await this.#query(q('putAnchor', [Buffer.from(record)]), true);
    return record;
  }
}
