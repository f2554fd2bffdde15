/**
 * Group commit for the `sqlite` backend (D12, D13). Each write is a synchronous
 * read-modify-write closure. Closures are queued and run on the next turn of the event
 * loop (`setImmediate`, or a small timer when `windowMs` > 0): every closure queued by then
 * shares ONE `BEGIN IMMEDIATE … COMMIT` — one fsync — and runs inside its own SAVEPOINT,
 * so a failing write (cas mismatch, integrity error) is rolled back alone. Promises settle
 * only after COMMIT returned and, with `durability` (wal-sync.ts), once the WAL sync that
 * followed it completed; if COMMIT fails, every write of the batch is rejected.
 *
 * better-sqlite3 is synchronous and single-connection, so nothing interleaves with a batch:
 * a closure's read and write are atomic within this process, and `BEGIN IMMEDIATE` takes
 * SQLite's write lock up front against other processes.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { backoffDelay, type Logger } from '../../lib/index.js';
import { StoreError } from '../types.js';
import { toStoreError } from './file.js';
import type { WalSync } from './wal-sync.js';

interface GroupCommitOptions {
  /** Share one transaction among the writes queued together (false: one each). */
  enabled: boolean;
  /** Largest number of writes in one transaction. */
  maxBatch: number;
  /** Extra wait before a flush to gather more writes; 0 = next event-loop turn. */
  windowMs: number;
  logger?: Logger;
  /** Called with the size of every committed batch (metrics); must not throw. */
  onBatch?: (size: number) => void;
  /**
   * Take SQLite's write lock without blocking the event loop when another process holds it
   * (other Nexus workers, or any process opening the file: the store sets it always).
   * `BEGIN IMMEDIATE` runs with a zero busy timeout and a busy answer puts the batch back, to
   * be tried again after a short pause (reads keep being served meanwhile), for at most this
   * many ms before it fails with `store_busy`. Unset: the connection's own busy timeout
   * applies (SQLite waits inside the call, and the event loop with it).
   */
  lockWaitMs?: number;
  /** True while this process's own checkpoint thread may hold the lock: that wait does not count toward `lockWaitMs`. */
  ownLockHolder?: () => boolean;
  /** True while that thread asks for the lock: no batch starts (it is put back as if busy), so the thread gets it at once. */
  yieldLock?: () => boolean;
  /**
   * The connection runs with `synchronous=NORMAL` and commits are synced off the event loop:
   * a batch's writes (and `afterCommit`) settle once the sync that followed its COMMIT
   * completed. A failed sync fails the batch, and every batch after it is refused.
   */
  durability?: Pick<WalSync, 'noteCommit' | 'committed' | 'until' | 'failed' | 'beforeWrites'>;
}

/** A batch not started because this process's checkpoint thread asked for the write lock: handled as a busy lock. */
const YIELDED = Object.assign(new Error('yielded to the checkpoint thread'), { code: 'SQLITE_BUSY' });

/** Pauses between tries of a busy write lock (ms; jittered, see backoffDelay). */
const LOCK_RETRY = { initialMs: 1, maxMs: 16 } as const;

interface PendingWrite {
  run: () => unknown;
  /** When the write was queued (`lockWaitMs`: each write's own wait for a busy lock counts from here). */
  queuedAt: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommit {
  readonly #db: BetterSqlite3.Database;
  readonly #opts: GroupCommitOptions;
  readonly #st: Record<'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollbackTo', BetterSqlite3.Statement>;
  /** `lockWaitMs` only: busy timeout off, and back to the connection's setting. */
  readonly #busy: { off: BetterSqlite3.Statement; on: BetterSqlite3.Statement } | undefined;
  /** `lockWaitMs` only: how often the lock was found taken since it was last taken here (the retry pause grows with it). */
  #lockTries: number | undefined;
  /** `lockWaitMs` only: when this process's own checkpoint was last seen holding the lock; no write's wait counts before it. */
  #exemptUntil = 0;
  #queue: PendingWrite[] = [];
  #scheduled = false;
  #drained: (() => void)[] = [];
  /** Committed batches waiting for their sync (`durability`). */
  #syncing = 0;
  #stats = { transactions: 0, writes: 0 };
  /**
   * Runs inside every batch's transaction after its writes, before COMMIT, when at least one
   * write succeeded (the rollback anchor's counter, ../anchor.ts). Throwing rejects the batch.
   * What it returns is handed to `afterCommit` of the same batch, once that batch committed.
   */
  beforeCommit: (() => unknown) | undefined;
  /** Runs after every committed batch that called `beforeCommit`, with what it returned; must not throw. */
  afterCommit: ((fromBefore: unknown) => void) | undefined;

  constructor(db: BetterSqlite3.Database, opts: GroupCommitOptions) {
    this.#db = db;
    this.#opts = { ...opts, maxBatch: Math.max(1, opts.maxBatch) };
    this.#st = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT op'),
      release: db.prepare('RELEASE op'),
      rollbackTo: db.prepare('ROLLBACK TO op'),
    };
    if (opts.lockWaitMs !== undefined) {
      const timeout = Number(db.pragma('busy_timeout', { simple: true }));
      this.#busy = { off: db.prepare('PRAGMA busy_timeout = 0'), on: db.prepare(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(timeout))}`) };
    }
  }

  /** Queues a read-modify-write closure; resolves with its value after its transaction committed. */
  run<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: fn, queuedAt: performance.now(), resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** Resolves once every queued write has been committed (and synced) or rejected. */
  async drain(): Promise<void> {
    if (this.#queue.length > 0 || this.#scheduled || this.#syncing > 0) await new Promise<void>((r) => this.#drained.push(r));
  }

  #notifyDrained(): void {
    if (this.#queue.length > 0 || this.#scheduled || this.#syncing > 0) return;
    const waiters = this.#drained.splice(0);
    for (const w of waiters) w();
  }

  /** Write transactions run and writes executed so far. */
  stats(): { transactions: number; writes: number } {
    return { ...this.#stats };
  }

  /** `BEGIN IMMEDIATE`; with `lockWaitMs`, under a zero busy timeout (never waits inside SQLite). */
  #begin(): void {
    if (this.#busy === undefined) {
      this.#st.begin.run();
      return;
    }
    this.#busy.off.get();
    try {
      this.#st.begin.run();
    } finally {
      this.#busy.on.get();
    }
    this.#lockTries = undefined;
  }

  /**
   * With `lockWaitMs`: the write lock was busy (another process commits). Each write of the
   * batch that has waited `lockWaitMs` since it was queued fails `store_busy` (nothing applied);
   * the others go back to the head of the queue, tried again after a short pause. The time
   * while this process's own checkpoint holds the lock counts for none of them. False: another
   * error, which fails the whole batch (the caller's).
   */
  #retryLater(batch: PendingWrite[], e: unknown): boolean {
    const limit = this.#opts.lockWaitMs;
    if (limit === undefined || !String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) {
      this.#lockTries = undefined;
      return false;
    }
    const now = performance.now(); // monotonic: a wall-clock step neither stretches nor ends a wait
    if (this.#opts.ownLockHolder?.() === true) this.#exemptUntil = now;
    const keep: PendingWrite[] = [];
    let busy: StoreError | undefined;
    for (const op of batch) {
      if (now - Math.max(op.queuedAt, this.#exemptUntil) < limit) keep.push(op);
      else op.reject(busy ??= new StoreError('store_busy', { cause: e, outcome: 'not_applied' }));
    }
    if (keep.length === 0) return true;
    this.#queue.unshift(...keep);
    if (!this.#scheduled) {
      this.#scheduled = true;
      const tries = this.#lockTries ?? 0;
      this.#lockTries = tries + 1;
      setTimeout(() => {
        this.#scheduled = false;
        this.#flush();
      }, backoffDelay(tries, LOCK_RETRY));
    }
    return true;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const go = (): void => {
      this.#scheduled = false;
      this.#flush();
    };
    if (this.#opts.windowMs > 0) setTimeout(go, this.#opts.windowMs);
    else setImmediate(go);
  }

  #flush(): void {
    const size = this.#opts.enabled ? this.#opts.maxBatch : 1;
    const batch = this.#queue.splice(0, size);
    if (batch.length > 0) this.#runBatch(batch);
    // After the batch: a batch put back for a busy lock has already scheduled its retry.
    if (this.#queue.length > 0) this.#schedule();
    this.#notifyDrained();
  }

  #runBatch(batch: PendingWrite[]): void {
    const st = this.#st;
    const poisoned = this.#opts.durability?.failed('not_applied');
    if (poisoned) {
      for (const op of batch) op.reject(poisoned);
      return;
    }
    try {
      if (this.#opts.yieldLock?.() === true) throw YIELDED;
      this.#begin();
    } catch (e) {
      if (this.#retryLater(batch, e)) return;
      const err = toStoreError(e);
      for (const op of batch) op.reject(err);
      return;
    }
    try {
      // The write lock is held: a log left unsettled at start is rewritten before any write.
      this.#opts.durability?.beforeWrites();
    } catch (e) {
      try {
        st.rollback.run();
      } catch {
        // nothing to undo: no write ran
      }
      const err = toStoreError(e);
      err.outcome ??= 'not_applied';
      for (const op of batch) op.reject(err);
      return;
    }
    const outcomes: Outcome[] = [];
    let aborted: StoreError | null = null;
    for (const op of batch) {
      if (aborted) {
        outcomes.push({ ok: false, error: aborted });
        continue;
      }
      try {
        st.savepoint.run();
        const value = op.run();
        st.release.run();
        outcomes.push({ ok: true, value });
      } catch (e) {
        outcomes.push({ ok: false, error: toStoreError(e) });
        try {
          if (!this.#db.inTransaction) throw new StoreError('store_unavailable');
          st.rollbackTo.run();
          st.release.run();
        } catch (e2) {
          // The driver dropped the whole transaction (I/O error, disk full…): nothing of
          // this batch can be acknowledged.
          aborted = toStoreError(e2);
        }
      }
    }
    const hook = this.beforeCommit;
    const anchored = !aborted && hook !== undefined && outcomes.some((o) => o.ok);
    let fromBefore: unknown;
    if (anchored) {
      try {
        fromBefore = hook();
      } catch (e) {
        aborted = toStoreError(e);
      }
    }
    if (!aborted) {
      try {
        st.commit.run();
      } catch (e) {
        aborted = toStoreError(e);
      }
    }
    this.#stats.transactions++;
    this.#stats.writes += batch.length;
    if (!aborted) this.#opts.onBatch?.(batch.length);
    if (aborted) {
      let undone = false;
      try {
        if (this.#db.inTransaction) st.rollback.run();
        undone = true;
      } catch {
        // nothing more to undo
      }
      // A full disk refused a write before the commit frame was whole, and the transaction is
      // rolled back: certainly nothing applied, so a client may retry the write.
      if (undone && aborted.failure === 'disk_full') aborted.outcome ??= 'not_applied';
      // debug: the store's health tracker (../health.ts) names the cause at a bounded rate.
      this.#opts.logger?.debug({ err: aborted.code }, 'store write batch rolled back');
      for (const op of batch) op.reject(aborted);
      return;
    }
    const settle = (): void => {
      if (anchored) this.afterCommit?.(fromBefore);
      for (let i = 0; i < batch.length; i++) {
        const o = outcomes[i]!;
        const op = batch[i]!;
        if (o.ok) op.resolve(o.value);
        else op.reject(o.error);
      }
    };
    // A batch whose writes all failed committed nothing, but their answers (a cas mismatch, a
    // refusal) were decided on what earlier commits wrote: they wait for those to be on disk.
    const d = this.#opts.durability;
    const synced = d === undefined ? undefined : d.until(outcomes.some((o) => o.ok) ? d.noteCommit() : d.committed());
    if (synced === undefined) {
      settle();
      return;
    }
    this.#syncing++;
    synced.then(settle, (e: unknown) => {
      // Committed writes: on disk or not, nobody knows (`unknown`); rolled-back ones: not applied.
      for (let i = 0; i < batch.length; i++) batch[i]!.reject(outcomes[i]!.ok ? e : d!.failed('not_applied') ?? e);
    }).finally(() => {
      this.#syncing--;
      this.#notifyDrained();
    });
  }
}
