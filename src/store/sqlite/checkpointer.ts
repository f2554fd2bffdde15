/**
 * Runs the `sqlite` backend's WAL checkpoints on a worker thread (a single Nexus process).
 *
 * SQLite checkpoints automatically inside the COMMIT that takes the log past 1,000 pages, on the
 * connection that committed: better-sqlite3 runs that on the main thread, so every ~1,000 pages
 * of writes the whole process (reads, TLS, other requests) stopped while the log was synced,
 * its pages copied into the database file, and that file synced: two disk syncs and a few MB
 * of copying, 40 ms and more on a disk with a 20 ms sync. Instead the main connection runs with
 * `wal_autocheckpoint=0`, and after each committed batch the store asks SQLite how far the log
 * is ahead of the database file (`wal_checkpoint(NOOP)`: reads the log's shared index, does no
 * work); at {@link DEFAULT_FRAMES} pages a worker thread with its own connection to the file
 * checkpoints. SQLite's rules are unchanged: the log is synced before its pages are
 * copied, the database file is synced before the log may be reused.
 *
 * Each checkpoint is a PASSIVE one, a sync of the database file, then a FULL one. PASSIVE alone
 * copies what the log held when it started, and under a steady stream of writes the log has
 * grown again by the time it ends, so the log is never wholly copied, never started again from
 * its beginning, and grows without bound (measured: 44 MB in 11 s of 16 writers). FULL takes
 * SQLite's write lock, copies what is left and syncs, so the log is wholly copied and the next
 * write starts it again; the PASSIVE copy and the sync before it keep that lock's hold short.
 * While the FULL step asks for the lock, the store starts no write batch ({@link yieldLock}):
 * beside back-to-back batches the worker's polls for the lock could otherwise miss every gap,
 * report busy, and leave the log to grow for {@link RETRY_MS}.
 * Meanwhile reads go on (WAL readers never wait for the writer) and the store's writes wait
 * without blocking the event loop (group-commit.ts retries a busy write lock, and does not count
 * the time while a checkpoint runs against its limit: {@link Checkpointer.running}). The worker
 * waits at most {@link LOCK_WAIT_MS} for the write lock and for readers of older commits
 * (another process's open read); past that it reports busy, and the next try waits
 * {@link RETRY_MS}.
 *
 * What stays on the main thread: the sync of the log's new header when the next write starts
 * the log again (one per checkpoint, where there were three), and the TRUNCATE checkpoint at
 * start (settle-log.ts, before anything is served).
 *
 * A disk too full for the database file to grow is not a failure. SQLite raises its mark of
 * pages copied only once every page is written (and, when the whole log was copied, the file
 * synced), so a checkpoint stopped by a refused write (SQLITE_FULL; see
 * {@link checkpointErrorKind}) has counted nothing as copied, and the log stays whole. It is
 * tried again, as after a busy lock, at the first commit at least {@link RETRY_MS} later (while
 * the disk is full the log cannot grow either, so nothing commits), with one WARN line until a
 * checkpoint succeeds; meanwhile reads go on, writes are refused as disk full, and freeing
 * space needs no restart (FI-14). A failed sync is not this case: its error (`ENOSPC`
 * included) stops the store, as below.
 *
 * A failed checkpoint (anything but a busy lock or a full disk) stops the store as a failed
 * log sync does (wal-sync.ts: every write and read refused until a restart, the log kept whole
 * for the next start), with one ERROR line (`alarm: checkpoint_failed`). It cannot simply be
 * tried again: a PASSIVE copy may already have counted pages as copied whose writing failed
 * (accepted by the kernel, lost at write-back), and a second sync through the same descriptor
 * would not report the error again, so a retry could declare the log copied, and the next
 * write would overwrite the only good copy.
 *
 * A worker that cannot start or dies hands the checkpoints back to the main thread, with a WARN
 * line: a PASSIVE checkpoint on the store's connection when the log is long enough, as SQLite's
 * automatic one, except that its errors are sorted as above (SQLite ignores its automatic
 * checkpoint's errors).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../../lib/index.js';
import { sqliteDriverFiles } from '../drivers.js';
import { toStoreError } from './file.js';
import { databaseFile } from './settle-log.js';
import { WORKER_SOURCE, type CheckpointReply } from './checkpoint-worker.js';

/** Log pages not yet in the database file that start a checkpoint (SQLite's own default). */
export const DEFAULT_FRAMES = 1000;
/** Pause after a busy checkpoint before the next try (ms). */
const RETRY_MS = 1000;
/** The worker's busy timeout: how long it waits for the write lock and for readers of older commits (ms). */
const LOCK_WAIT_MS = 50;
/** How long close() waits for a checkpoint in progress before it stops the thread (ms). */
const CLOSE_WAIT_MS = 10_000;
/**
 * How long a checkpoint may run before the store's writes stop waiting for it (they fail
 * `store_busy` after the busy timeout again) and a WARN line says so (ms): a disk that hangs.
 */
const RUNNING_CAP_MS = 30_000;

/**
 * What a checkpoint's error means. `busy`: a busy or locked database, as the store maps driver
 * errors (file.ts), tried again later. `full`: a write into the database file refused for lack
 * of space, before anything was counted as copied: SQLITE_FULL (ENOSPC on a write), or a
 * failed write (SQLITE_IOERR_WRITE, e.g. a quota) while the volume in `dir` shows no free space;
 * tried again later. `fatal`: anything else, a failed sync above all (SQLITE_IOERR_FSYNC, or the
 * worker's own `ENOSPC`/`EIO`), which may have lost pages that a retry would count as copied.
 */
export function checkpointErrorKind(code: string, dir: string): 'busy' | 'full' | 'fatal' {
  const mapped = toStoreError({ code }, dir);
  if (mapped.code === 'store_busy') return 'busy';
  if (code === 'SQLITE_FULL' || (code === 'SQLITE_IOERR_WRITE' && mapped.failure === 'disk_full')) return 'full';
  return 'fatal';
}

export interface CheckpointerOptions {
  /** Log pages not yet in the database file that start a checkpoint (default {@link DEFAULT_FRAMES}). */
  frames?: number | undefined;
  logger?: Logger | undefined;
  /** The statement the worker runs after the PASSIVE copy (tests inject a failing one); default a FULL checkpoint. */
  statement?: string;
  /** Called once when a checkpoint failed (not busy): the store refuses everything until a restart. */
  onFatal?: ((err: NodeJS.ErrnoException) => void) | undefined;
  /**
   * True once the store has stopped for another fault (a failed log sync, which wrote its own
   * ERROR line): a checkpoint failing after it meets the same disk and is said at WARN.
   */
  stopped?: (() => boolean) | undefined;
}

export class Checkpointer {
  readonly #db: BetterSqlite3.Database;
  readonly #file: string;
  readonly #frames: number;
  readonly #logger: Logger | undefined;
  readonly #statement: string;
  readonly #onFatal: ((err: NodeJS.ErrnoException) => void) | undefined;
  readonly #stopped: (() => boolean) | undefined;
  readonly #noop: BetterSqlite3.Statement;
  #worker: Worker | undefined;
  /** Each worker started and not yet gone, and its exit. */
  readonly #exits = new Map<Worker, Promise<void>>();
  /**
   * The database file opened here for the worker's sync. Opened on this thread, because Node
   * closes what a worker opened when it exits, and closing any descriptor of a file drops all of
   * the process's POSIX locks on it: another process could then fold the log into the file and
   * delete it while the store still uses it. Closed only once no connection to the file is left
   * ({@link releaseFile}).
   */
  #fileFd: number | undefined;
  /** Set by the worker while its FULL step asks for SQLite's write lock (the store's writes then wait: {@link yieldLock}). */
  readonly #wantsLock = new Int32Array(new SharedArrayBuffer(4));
  #running = false;
  #runningSince = 0;
  #slow: NodeJS.Timeout | undefined;
  /** Checkpoints handed back to the main thread (the worker could not run). */
  #fallback = false;
  #closed = false;
  #started = false;
  #retryAt = 0;
  /** Set by a failed checkpoint: none is tried again. */
  #failed = false;
  #stats = { checkpoints: 0, busy: 0, full: 0, failures: 0 };
  /** Set by a checkpoint that found the disk full, until one succeeds (one WARN line per episode). */
  #fullNoted = false;

  constructor(db: BetterSqlite3.Database, opts: CheckpointerOptions = {}) {
    this.#db = db;
    this.#file = databaseFile(db);
    this.#frames = opts.frames ?? DEFAULT_FRAMES;
    this.#logger = opts.logger;
    this.#statement = opts.statement ?? 'PRAGMA wal_checkpoint(FULL)';
    this.#onFatal = opts.onFatal;
    this.#stopped = opts.stopped;
    this.#noop = db.prepare('PRAGMA wal_checkpoint(NOOP)');
    db.pragma('wal_autocheckpoint = 0');
  }

  /** Checkpoints run, busy, stopped by a full disk and failed so far; whether the worker was ever started; `fallback` once the main thread runs them. */
  stats(): { checkpoints: number; busy: number; full: number; failures: number; fallback: boolean; started: boolean } {
    return { ...this.#stats, fallback: this.#fallback, started: this.#started };
  }

  /** Whether a checkpoint runs (the worker may hold SQLite's write lock), for at most {@link RUNNING_CAP_MS}. */
  get running(): boolean {
    return this.#running && Date.now() - this.#runningSince < RUNNING_CAP_MS;
  }

  /** Whether the store should start no write batch now: the worker asks for the write lock (see {@link running}'s cap). */
  get yieldLock(): boolean {
    return Atomics.load(this.#wantsLock, 0) === 1 && this.running;
  }

  /** After every committed batch (main thread, connection idle): starts a checkpoint when the log is long enough. Never throws. */
  afterCommit(): void {
    if (this.#running || this.#closed || this.#failed) return;
    if (Date.now() < this.#retryAt) return;
    let r: { log: number; checkpointed: number } | undefined;
    try {
      r = this.#noop.get() as { log: number; checkpointed: number } | undefined;
    } catch {
      return; // the next commit asks again
    }
    if (r === undefined || r.log - r.checkpointed < this.#frames) return;
    if (this.#fallback) {
      this.#checkpointHere();
      return;
    }
    this.#running = true;
    this.#runningSince = Date.now();
    this.#slow = setTimeout(() => this.#logger?.warn({ ms: RUNNING_CAP_MS }, 'a database checkpoint has been running for a long time: the disk may hang; writes fail store_busy again'), RUNNING_CAP_MS);
    this.#slow.unref();
    try {
      (this.#worker ??= this.#spawn()).postMessage('checkpoint');
    } catch (e) {
      this.#handBack(e);
    }
  }

  /**
   * Without the worker: a PASSIVE checkpoint on this connection, as SQLite's automatic one would
   * run, except that an error is not ignored (SQLite ignores its automatic checkpoint's errors).
   */
  #checkpointHere(): void {
    try {
      const [r] = this.#db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number }>;
      this.#done(r?.busy === 1);
    } catch (e) {
      this.#failedWith(String((e as { code?: unknown }).code ?? 'error'));
    }
  }

  /** A checkpoint that ran (`busy`: it met a busy lock or a reader of an older commit and copied only part of the log). */
  #done(busy: boolean): void {
    this.#stats.checkpoints++;
    if (busy) this.#busy();
    else if (this.#fullNoted) {
      this.#fullNoted = false;
      this.#logger?.info('database checkpoints run again: the disk has room');
    }
  }

  /** A checkpoint that threw: busy and full are tried again later; anything else stops the store. */
  #failedWith(code: string): void {
    const kind = checkpointErrorKind(code, path.dirname(this.#file));
    if (kind === 'busy') this.#busy();
    else if (kind === 'full') this.#full(code);
    else this.#fatal(code);
  }

  /** A checkpoint stopped by a full disk (nothing counted as copied): tried again at a commit at least {@link RETRY_MS} later. */
  #full(code: string): void {
    this.#stats.full++;
    this.#retryAt = Date.now() + RETRY_MS;
    if (this.#fullNoted) return;
    this.#fullNoted = true;
    this.#logger?.warn({ err: code, cause: 'disk_full' },
      'a database checkpoint found the disk full: the log is kept whole and the checkpoint is tried again after the next write that commits; reads go on; free space on the volume that holds the store');
  }

  /** A checkpoint that met a busy lock or a reader of an older commit: the next try waits {@link RETRY_MS}. */
  #busy(): void {
    this.#stats.busy++;
    this.#retryAt = Date.now() + RETRY_MS;
  }

  /**
   * Closes the database file opened for the worker's sync; the store calls it once its own
   * connection is closed, and not after a failure (the log is then kept by a connection that
   * stays open: wal-sync.ts).
   */
  releaseFile(): void {
    if (this.#fileFd !== undefined) fs.closeSync(this.#fileFd);
    this.#fileFd = undefined;
  }

  /**
   * Stops the worker (after a checkpoint in progress), before the store closes its connection;
   * also waits for a worker stopped earlier (a hand-back, a failure) to be gone, so that its
   * connection is closed before the store's file descriptor is ({@link releaseFile}).
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#slow);
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) w.postMessage('close');
    const timer = setTimeout(() => { for (const x of this.#exits.keys()) void x.terminate(); }, CLOSE_WAIT_MS);
    await Promise.all(this.#exits.values());
    clearTimeout(timer);
    Atomics.store(this.#wantsLock, 0, 0);
  }

  #spawn(): Worker {
    this.#started = true;
    const { driver, binding } = sqliteDriverFiles();
    const fd = (this.#fileFd ??= fs.openSync(this.#file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW));
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, binding, file: this.#file, fd, wantsLock: this.#wantsLock.buffer, statement: this.#statement, lockWaitMs: LOCK_WAIT_MS },
      // The worker loads only the driver: no need for the parent's environment or arguments,
      // nor for much of a heap (it holds a few objects; the pages it copies are native memory).
      env: {},
      argv: [],
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.#exits.set(w, new Promise<void>((resolve) => w.once('exit', () => {
      this.#exits.delete(w);
      resolve();
    })));
    w.on('message', (m: CheckpointReply) => this.#onReply(m));
    w.on('error', (e) => this.#handBack(e));
    w.on('exit', () => {
      if (!this.#closed && this.#worker === w) this.#handBack(new Error('checkpoint worker exited'));
    });
    w.unref(); // after the listeners (a 'message' listener refs it again): it never keeps the process alive
    return w;
  }

  #onReply(m: CheckpointReply): void {
    if (m.ready === true) return;
    this.#running = false;
    clearTimeout(this.#slow);
    if (m.ok === true) this.#done(m.busy === 1);
    else this.#failedWith(m.code ?? 'error');
  }

  /** A failed checkpoint (not busy, not a full disk): none is tried again, and the store refuses everything until a restart. */
  #fatal(code: string): void {
    this.#failed = true;
    this.#stats.failures++;
    if (this.#stopped?.() === true) {
      this.#logger?.warn({ err: code, after: 'wal_sync_failed' }, 'copying the database log into the database file failed too (the store had already stopped)');
    } else {
      this.#logger?.error({ err: code, alarm: 'checkpoint_failed' },
        'copying the database log into the database file failed: writes and reads are refused until Nexus is restarted (the log is kept whole; the next start copies all of it)');
    }
    this.#onFatal?.(Object.assign(new Error(`checkpoint failed: ${code}`), { code }));
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) w.postMessage('close');
  }

  /** The worker cannot run: checkpoints run on the main thread again ({@link #checkpointHere}). */
  #handBack(e: unknown): void {
    if (this.#fallback || this.#closed || this.#failed) return;
    this.#fallback = true;
    this.#running = false;
    clearTimeout(this.#slow);
    Atomics.store(this.#wantsLock, 0, 0); // a worker stopped inside its FULL step never cleared it
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) void w.terminate();
    const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : 'error';
    this.#logger?.warn({ err: code }, 'the checkpoint thread stopped: database checkpoints run on the main thread again');
  }
}
