/**
 * The sqlite backend's commit counter (../anchor.ts): once armed, every group-commit batch
 * that acknowledges a write also rewrites the `commit_anchor` system record — inside the
 * batch's own transaction, just before COMMIT, so the counter moves exactly with what is
 * durable (one small row per batch, not per write). A WAL cut after acknowledged commits,
 * or an older copy of the file, therefore carries an older counter. The same transaction adds
 * the record's counter and nonce to the history (anchor-history.ts).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { ANCHOR_RECORD, anchorCounter, anchorNonce, type AnchorSealer, type CommitAnchor } from '../anchor.js';
import { SqliteAnchorHistory } from './anchor-history.js';
import { StoreError } from '../types.js';
import type { GroupCommit } from './group-commit.js';

interface SqliteAnchorDeps {
  db: BetterSqlite3.Database;
  commits: GroupCommit;
  /** A synchronous read with the store's error mapping. */
  read<T>(fn: () => T): T;
  /** A write closure through group commit. */
  write<T>(fn: () => T): Promise<T>;
  /**
   * Resolves once every commit so far is on disk (the store syncs its WAL itself:
   * wal-sync.ts); undefined when nothing waits. A counter read must not reach the Keepers
   * before the commit that wrote it is durable, or a power loss would look like a rollback.
   */
  durable?: () => Promise<void> | undefined;
}

export class SqliteAnchor implements CommitAnchor {
  readonly #d: SqliteAnchorDeps;
  readonly #get: BetterSqlite3.Statement;
  readonly #put: BetterSqlite3.Statement;
  readonly #history: SqliteAnchorHistory;
  #seal: AnchorSealer | undefined;
  #committed: ((record: Uint8Array) => void) | undefined;
  /** The least counter the next batch's record takes (`advance`), consumed by that batch. */
  #nextMin = 0n;
  onWrite: (() => void) | undefined;

  constructor(d: SqliteAnchorDeps) {
    this.#d = d;
    this.#get = d.db.prepare('SELECT value FROM system WHERE key = ?').pluck();
    this.#put = d.db.prepare('INSERT OR REPLACE INTO system (key, value) VALUES (?, ?)');
    this.#history = new SqliteAnchorHistory(d.db);
  }

  #stored(): Buffer | null {
    return (this.#get.get(ANCHOR_RECORD) as Buffer | undefined) ?? null;
  }

  /**
   * Inside a batch's transaction, once per batch: the record after the stored one (at least
   * `#nextMin`; the sealer verifies the stored one), written with its history entry. Returns it
   * for the batch's `afterCommit` (a batch that rolls back never reports its record).
   */
  #bump(): Buffer | undefined {
    const seal = this.#seal;
    if (!seal) return undefined;
    const min = this.#nextMin;
    this.#nextMin = 0n;
    const written = Buffer.from(seal(this.#stored(), min));
    this.#put.run(ANCHOR_RECORD, written);
    const counter = anchorCounter(written);
    const nonce = anchorNonce(written);
    if (counter !== undefined && nonce !== undefined) this.#history.append(counter, nonce);
    return written;
  }

  arm(seal: AnchorSealer, committed?: (record: Uint8Array) => void): void {
    this.#seal = seal;
    this.#committed = committed;
    this.#nextMin = 0n;
    this.#d.commits.beforeCommit = () => this.#bump();
    this.#d.commits.afterCommit = (record) => {
      if (record instanceof Buffer) this.#committed?.(new Uint8Array(record));
      this.onWrite?.();
    };
  }

  disarm(): void {
    this.#seal = undefined;
    this.#committed = undefined;
    this.#d.commits.beforeCommit = undefined;
    this.#d.commits.afterCommit = undefined;
  }

  async read(): Promise<Uint8Array | null> {
    const v = this.#d.read(() => this.#stored());
    await this.#d.durable?.();
    return v ? new Uint8Array(v) : null;
  }

  /** Each batch already advanced it: the stored record covers every acknowledged write. */
  current(): Promise<Uint8Array | null> {
    return this.read();
  }

  async recorded(counters: readonly bigint[]): Promise<Map<bigint, Uint8Array>> {
    return this.#d.read(() => this.#history.lookup(counters));
  }

  async advance(min: bigint): Promise<Uint8Array> {
    if (!this.#seal) throw new StoreError('store_locked');
    // A batch of its own through group commit, whose one record takes at least `min` (its
    // afterCommit tells `committed`): never two records in one transaction.
    if (min > this.#nextMin) this.#nextMin = min;
    await this.#d.write(() => undefined);
    const r = await this.read();
    if (!r) throw new StoreError('store_integrity');
    return r;
  }
}
