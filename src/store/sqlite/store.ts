/**
 * `sqlite` backend (better-sqlite3): one file (file.ts), WAL, schema versioned (schema.ts).
 * Sealing, key check, decoding and listing come from the shared core (../sealed.ts); this
 * file holds only the SQL and the transactions.
 *
 * Writes run as synchronous closures through group commit (group-commit.ts): one
 * `BEGIN IMMEDIATE … COMMIT` per batch, one SAVEPOINT per write. Reads run synchronously
 * outside the queue and see the last committed state.
 *
 * Durability (D12): a lone process runs the connection with `synchronous=NORMAL` and syncs the
 * WAL on the thread pool after each COMMIT (wal-sync.ts); writes are acknowledged, and reads
 * answered, only once what they saw is on disk. Several processes on one file (`shared`)
 * cannot see each other's syncs, so they keep `synchronous=FULL` (SQLite syncs inside COMMIT).
 * A lone process also runs SQLite's checkpoints on a worker thread (checkpointer.ts).
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { RootKey } from '../../crypto/index.js';
import { settleKeyRecords, type KeyRecordsPlan, type KeyRecordsTx } from '../key-check.js';
import type { PathRow } from '../path-catalog.js';
import type { BlobSwap, KeyRecordsUpdate, StaleBlob } from '../key-custody.js';
import { SEAL_FENCE_RECORD } from '../seal-fence.js';
import { SealedStore, type MetaRow, type ReadRow, type SealedSecretWrite, type SealedStoreOptions } from '../sealed.js';
import { StoreError, type KeyAdoption, type PolicyRecord } from '../types.js';
import path from 'node:path';
import { openDatabase, readTransaction, refineStoreError, toStoreError, type ReadTransaction } from './file.js';
import { GroupCommit } from './group-commit.js';
import { SqliteAnchor } from './anchor.js';
import { SqlitePathFeed } from './path-feed.js';
import { openWalSync, type SyncFile, type WalSync } from './wal-sync.js';
import { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
import { ReadFence } from './read-fence.js';
import { keyIdBytes, prepare, type Statements } from './statements.js';


interface SqliteStoreOptions extends SealedStoreOptions {
  /** Database file, normally `<dataDir>/spike.db`. Its folder is created 0700 if missing. */
  file: string;
  /** SQLite `busy_timeout` (SPIKE_NEXUS_DB_BUSY_TIMEOUT_MS, default 5000). */
  busyTimeoutMs?: number;
  /** Share one transaction among the writes queued together (default true). */
  groupCommit?: boolean;
  /** Largest number of writes in one transaction (default 128: bounds event-loop blocking to ~20 ms). */
  maxBatch?: number;
  /** Extra wait before a flush to gather more writes; 0 = next event-loop turn (default). */
  groupCommitWindowMs?: number;
  /** Called with the size of every committed group (metrics). */
  onCommitBatch?: (size: number) => void;
  /**
   * Other processes write this file too (several Nexus workers): writes take the lock without
   * blocking the event loop (group-commit.ts, waiting up to the busy timeout) and every read
   * runs in one read transaction, so a read of several statements sees one commit.
   */
  shared?: boolean;
  /** How the WAL is synced when not `shared` (default `fs.fdatasync`; tests inject a slow or failing one). */
  syncFile?: SyncFile;
  /** Not `shared`: when the worker thread checkpoints, and (tests) what it runs (checkpointer.ts). */
  checkpoints?: Pick<CheckpointerOptions, 'frames' | 'statement'>;
}

const DEFAULTS = {
  busyTimeoutMs: 5000,
  groupCommit: true,
  maxBatch: 128,
  groupCommitWindowMs: 0,
} as const;

export class SqliteStore extends SealedStore {
  readonly kind = 'sqlite' as const;
  readonly file: string;
  readonly #db: BetterSqlite3.Database;
  readonly #st: Statements;
  readonly #commits: GroupCommit;
  readonly #paths: SqlitePathFeed;
  /** `shared` only: runs a read inside one read transaction (deferred BEGIN … COMMIT). */
  readonly #snapshot: ReadTransaction | undefined;
  /** Not `shared`: the WAL sync that acknowledges writes, and what reads wait for (wal-sync.ts, read-fence.ts). */
  readonly #wal: WalSync | undefined;
  readonly #seen: ReadFence | undefined;
  /** Not `shared`: runs the WAL checkpoints off the main thread. */
  readonly #checkpoints: Checkpointer | undefined;
  /** The rollback anchor's commit counter (anchor.ts), advanced once per batch once armed. */
  readonly anchor: SqliteAnchor;
  /** The system table as the key check sees it, inside a write closure. */
  readonly #system: KeyRecordsTx = {
    get: (key) => {
      const v = this.#st.getSystem.get(key) as Buffer | undefined;
      return v ? new Uint8Array(v) : null;
    },
    putIfAbsent: (key, value) => this.#st.putSystemIfAbsent.run(key, Buffer.from(value)).changes === 1,
  };

  /** Use `openSqliteStore` (or `openStore`); the constructor opens the file synchronously. */
  constructor(opts: SqliteStoreOptions) {
    super(opts);
    this.file = opts.file;
    const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs;
    const background = opts.shared !== true;
    this.#db = openDatabase(opts.file, busyTimeoutMs, background ? 'NORMAL' : 'FULL');
    if (background) {
      try {
        this.#wal = openWalSync(this.#db, opts.syncFile, opts.logger);
        const wal = this.#wal;
        this.#checkpoints = new Checkpointer(this.#db, { ...opts.checkpoints, logger: opts.logger, onFatal: (e) => wal.fail(e), stopped: () => wal.failed() !== undefined });
      } catch (e) {
        void this.#wal?.close();
        this.#db.close();
        throw toStoreError(e, path.dirname(opts.file));
      }
      this.#seen = new ReadFence(this.#wal);
    }
    this.#st = prepare(this.#db);
    const oneRead = readTransaction(this.#db);
    this.#paths = new SqlitePathFeed(this.#db, oneRead);
    if (opts.shared === true) this.#snapshot = oneRead;
    this.#commits = new GroupCommit(this.#db, {
      // Always, not only when `shared`: any other process (an operator's sqlite3, a backup
      // tool) may take the write lock, and waiting for it inside SQLite would stop this
      // process's event loop, reads included, for up to the busy timeout (FI-15).
      lockWaitMs: busyTimeoutMs,
      ownLockHolder: () => this.#checkpoints?.running === true,
      yieldLock: () => this.#checkpoints?.yieldLock === true,
      enabled: opts.groupCommit ?? DEFAULTS.groupCommit,
      maxBatch: opts.maxBatch ?? DEFAULTS.maxBatch,
      windowMs: opts.groupCommitWindowMs ?? DEFAULTS.groupCommitWindowMs,
      ...(opts.logger ? { logger: opts.logger } : {}),
      onBatch: (size) => {
        this.#checkpoints?.afterCommit();
        opts.onCommitBatch?.(size);
      },
      ...(this.#wal ? { durability: this.#wal } : {}),
    });
    this.anchor = new SqliteAnchor({
      db: this.#db, commits: this.#commits, read: (fn) => this.#read(fn), write: (fn) => this.#write(fn),
      ...(this.#seen ? { durable: () => this.#settled(undefined, this.#seen!.all()) } : {}),
    });
  }

  /** Runs a synchronous read; driver errors become StoreErrors (and are reported to `health`). */
  #read<T>(fn: () => T): T {
    this.checkOpen();
    try {
      return this.#snapshot ? this.#snapshot(fn) : fn();
    } catch (e) {
      const err = toStoreError(e, path.dirname(this.file));
      this.health.failed(err);
      throw err;
    }
  }

  /**
   * `v`, read, once what it may show is on disk (`wait`, from the read fence: undefined when
   * nothing it read is waiting for the WAL sync). For every read whose result can reach a client.
   */
  async #settled<T>(v: T, wait: Promise<void> | undefined): Promise<T> {
    if (wait === undefined) return v;
    try {
      await wait;
    } catch (e) {
      const err = refineStoreError(toStoreError(e), path.dirname(this.file));
      this.health.failed(err);
      throw err;
    }
    return v;
  }

  /** Queues a read-modify-write closure; resolves after its transaction committed. */
  async #write<T>(fn: () => T): Promise<T> {
    this.checkOpen();
    try {
      const v = await this.#commits.run(fn);
      this.health.succeeded('write');
      return v;
    } catch (e) {
      if (!(e instanceof StoreError)) throw e;
      const err = refineStoreError(e, path.dirname(this.file));
      this.health.failed(err);
      throw err;
    }
  }

  /**
   * Inside a write: the stored seal fence (../key-custody.ts). Only another process can move the
   * keyring behind this one's back, so a file nobody else writes (not `shared`: no #snapshot)
   * skips the read (null: allowed).
   */
  #fence(): Uint8Array | null {
    return this.#snapshot === undefined ? null : this.#system.get(SEAL_FENCE_RECORD);
  }

  /**
   * The metadata row of `id`. `known`: the blob the sealer remembers for it; SQLite answers the
   * number 0 instead of the blob when the stored one is a blob equal to it byte for byte, and
   * `known` is used instead of a native copy of the same bytes (issue 17). Anything stored that
   * is not a blob (a NULL or a number put there behind the store) reads as NULL, an integrity
   * error where metadata is expected, never as "unchanged".
   */
  #metaRow(id: Buffer, known?: Buffer): MetaRow {
    const got = this.#st.getMeta.get(known ?? null, id) as Buffer | 0 | null | undefined;
    if (got === undefined) return { meta: null, versions: this.#st.hasVersions.get(id) !== undefined };
    return { meta: sameAs(got, known), versions: true };
  }

  // --- system records -------------------------------------------------------------------

  async getSystem(key: string): Promise<Uint8Array | null> {
    const v = this.#read(() => this.#system.get(key));
    return this.#settled(v, this.#seen?.system());
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    const copy = Buffer.from(value);
    return this.#write(() => {
      this.#seen?.systemWritten();
      return this.#st.putSystemIfAbsent.run(key, copy).changes === 1;
    });
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    const copy = Buffer.from(value);
    await this.#write(() => {
      this.#seen?.systemWritten();
      this.#st.putSystem.run(key, copy);
    });
  }

  protected settleKeyRecords<Refusal extends string>(root: RootKey, adoption?: KeyAdoption<Refusal>): Promise<KeyRecordsPlan<Refusal>> {
    return this.#write(() => {
      this.#seen?.systemWritten();
      return settleKeyRecords(this.#system, root, adoption);
    });
  }

  protected updateKeyRecords<T>(keys: string[], plan: (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>): Promise<T> {
    return this.#write(() => {
      const found = new Map(keys.map((k) => [k, this.#system.get(k)]));
      const { result, writes } = plan((k) => found.get(k) ?? null);
      if (writes.length > 0) this.#seen?.systemWritten();
      for (const [key, value] of writes) this.#st.putSystem.run(key, Buffer.from(value));
      return result;
    });
  }

  protected async scanStale(currentId: number, limit: number): Promise<StaleBlob[]> {
    const kid = keyIdBytes(currentId);
    return this.#read(() => {
      const out: StaleBlob[] = [];
      const take = (rows: unknown[], cell: (r: { id: Buffer; version?: number }) => StaleBlob['cell']): void => {
        for (const r of rows as { id: Buffer; version?: number; blob: Buffer }[]) out.push({ cell: cell(r), blob: r.blob });
      };
      take(this.#st.stalePaths.all(kid, limit), (r) => ({ kind: 'secret', id: r.id, version: 0, field: 'path' }));
      take(this.#st.staleMetas.all(kid, limit - out.length), (r) => ({ kind: 'secret', id: r.id, version: 0, field: 'meta' }));
      take(this.#st.staleValues.all(kid, limit - out.length), (r) => ({ kind: 'secret', id: r.id, version: r.version!, field: 'values' }));
      take(this.#st.stalePolicies.all(kid, limit - out.length), (r) => ({ kind: 'policy', id: r.id, version: 0, field: 'body' }));
      return out.slice(0, limit);
    });
  }

  protected replaceBlobs(swaps: BlobSwap[]): Promise<number> {
    return this.#write(() => {
      let n = 0;
      for (const { cell, old, blob } of swaps) {
        const id = Buffer.from(cell.id);
        const st = cell.field === 'path' ? this.#st.swapPath : cell.field === 'meta' ? this.#st.swapMeta : cell.field === 'body' ? this.#st.swapPolicy : null;
        const r = st ? st.run(blob, id, old) : this.#st.swapValue.run(blob, id, cell.version, old);
        n += r.changes;
      }
      return n;
    });
  }

  // --- secrets --------------------------------------------------------------------------

  protected async readSecret(id: Buffer, version: number, known?: Buffer): Promise<ReadRow> {
    const v = this.#read((): ReadRow => {
      // The metadata column is 0 when it equals `known`, as in #metaRow.
      const row = this.#st.getForRead.get(known ?? null, version, version, id, id) as [Buffer | 0 | null, number | null, Buffer | null] | undefined;
      if (row === undefined) return { ...this.#metaRow(id), version: null, value: null };
      return { meta: sameAs(row[0], known), versions: true, version: version > 0 ? version : row[1], value: row[2] };
    });
    return this.#settled(v, this.#seen?.secret(id));
  }

  protected async readMeta(id: Buffer, known?: Buffer): Promise<MetaRow> {
    const v = this.#read(() => this.#metaRow(id, known));
    return this.#settled(v, this.#seen?.secret(id));
  }

  protected writeSecret<T>(id: Buffer, plan: (row: MetaRow, fence: Uint8Array | null) => { result: T; write: SealedSecretWrite | null }, known?: () => Buffer | undefined): Promise<T> {
    return this.#write(() => {
      const { result, write } = plan(this.#metaRow(id, known?.()), this.#fence());
      if (write) {
        this.#seen?.secretWritten(id, write.created);
        if (write.created) this.#st.insertSecret.run(id, write.path, write.meta);
        else this.#st.updateMeta.run(write.meta, id);
        if (write.added) this.#st.putValue.run(id, write.added.version, write.added.blob);
        for (const v of write.dropped) this.#st.deleteValue.run(id, v);
      }
      return result;
    });
  }

  /** Every sealed path, page by page (path-feed.ts). */
  protected async readAllPaths(visit: (rows: PathRow[]) => Promise<void>): Promise<string> {
    const mark = await this.#paths.readAll((fn) => this.#read(fn), visit);
    return this.#settled(mark, this.#seen?.paths());
  }

  /** What other processes created since `mark` (several workers on one file; path-feed.ts). */
  protected async readPathsSince(mark: string): Promise<{ rows: PathRow[]; mark: string } | null> {
    const since = await this.#paths.since((fn) => this.#read(fn), mark);
    return this.#settled(since, this.#seen?.paths());
  }

  // --- policies -------------------------------------------------------------------------

  protected async readPolicy(id: Buffer): Promise<Buffer | null> {
    const v = this.#read(() => (this.#st.getPolicy.get(id) as Buffer | undefined) ?? null);
    return this.#settled(v, this.#seen?.policies());
  }

  protected async readPolicies(): Promise<{ id: Buffer; body: Buffer }[]> {
    const v = this.#read(() => this.#st.listPolicies.all() as { id: Buffer; body: Buffer }[]);
    return this.#settled(v, this.#seen?.policies());
  }

  protected writePolicy(id: Buffer, build: (old: Buffer | null, fence: Uint8Array | null) => { record: PolicyRecord; body: Buffer }): Promise<PolicyRecord> {
    return this.#write(() => {
      const { record, body } = build((this.#st.getPolicy.get(id) as Buffer | undefined) ?? null, this.#fence());
      this.#seen?.policyWritten();
      this.#st.putPolicy.run(id, body);
      this.#st.bumpGeneration.run();
      return record;
    });
  }

  protected removePolicy(id: Buffer): Promise<boolean> {
    return this.#write(() => {
      const gone = this.#st.deletePolicy.run(id).changes === 1;
      if (gone) {
        this.#seen?.policyWritten();
        this.#st.bumpGeneration.run();
      }
      return gone;
    });
  }

  async policyGeneration(): Promise<number> {
    const v = this.#read(() => Number(this.#st.getGeneration.get()));
    return this.#settled(v, this.#seen?.policies());
  }

  /** Write transactions run and writes executed so far (group-commit observability); not `shared`: the checkpoint thread's counters. */
  stats(): { transactions: number; writes: number; checkpoints?: ReturnType<Checkpointer['stats']> } {
    return { ...this.#commits.stats(), ...(this.#checkpoints ? { checkpoints: this.#checkpoints.stats() } : {}) };
  }

  /** Waits for queued writes to commit, then closes the file. */
  protected async shutdown(): Promise<void> {
    await this.#commits.drain();
    await this.#checkpoints?.close();
    await this.#wal?.close();
    this.#db.close();
    if (this.#wal?.failed() === undefined) this.#checkpoints?.releaseFile();
  }
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  return new SqliteStore(opts);
}

/** A metadata column read against `known`: 0 means "equal to `known`" (statements.ts). */
function sameAs(got: Buffer | 0 | null, known: Buffer | undefined): Buffer | null {
  if (got !== 0) return got;
  if (known === undefined) throw new StoreError('store_integrity'); // 0 only answers a bound blob
  return known;
}
