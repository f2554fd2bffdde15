/**
 * Makes the `sqlite` backend's commits durable off the event loop (D12, a single Nexus process).
 *
 * With `synchronous=FULL` SQLite calls fsync inside COMMIT, and better-sqlite3 runs COMMIT on
 * the main thread: every group-commit batch stopped the whole process — reads, TLS, other
 * requests — for one fsync (0.8 ms on the test VM's disk; 5-20 ms on slow or network disks,
 * where reads crawled whenever writes ran). Instead the connection runs with
 * `synchronous=NORMAL` (in WAL mode: no sync at COMMIT; the WAL is synced before each
 * checkpoint, the database after it, and the WAL header when the log is reused), and this
 * module syncs the WAL file on libuv's thread pool after each COMMIT:
 *
 * - a write is acknowledged only once an `fdatasync` of the WAL that started after its COMMIT
 *   returned has completed, so a 2xx still means "on disk", as with FULL;
 * - a read of something a commit not yet synced wrote waits for the same before it answers
 *   (the store tracks what each commit wrote), so no answer ever shows a commit that a power
 *   loss could still undo (SQLite makes a commit visible at COMMIT, before this sync);
 * - syncs are shared: one covers every commit noted before it started; a commit noted while
 *   one runs starts a second at once (at most {@link MAX_IN_FLIGHT}: the thread pool is shared
 *   with the audit log and other file work), so an acknowledgement waits for about one sync,
 *   not two. Any sync that completes covers every commit noted before it started, whichever
 *   finishes first (fdatasync also waits for pages another call is writing back); each slot
 *   has its own open of the file, so a writeback error reaches every sync that covers it;
 * - a failed sync poisons the gate: the kernel may have dropped the dirty pages it could not
 *   write, so nothing committed since the last good sync can be trusted, and no later sync
 *   could tell. Every waiting and later write and read fails (`store_unavailable`, I/O error)
 *   until Nexus is restarted. A restarted process would see the log as the page cache still
 *   holds it (pages that failed to write are kept, marked clean), so the store checkpoints the
 *   whole log into the database file (rewritten, then synced) before it serves (store.ts).
 *
 * Only one process may use this (several processes on one file sync each other's commits
 * nowhere: the shared mode keeps `synchronous=FULL`, see store.ts).
 */
import fs from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../../lib/index.js';
import { openSqlite } from '../drivers.js';
import { rewriteLog, settleLog } from './settle-log.js';
import { StoreError, type StoreOutcome } from '../types.js';

/**
 * The WAL sync of a store opened in this mode (`synchronous=NORMAL`), ready before anything is
 * served: the log settled (settle-log.ts), both sync descriptors opened (a descriptor opened
 * after a writeback error was reported elsewhere would never see it), and the log synced once:
 * the checkpoint's truncation, or, when the log could not be copied (busy, full), the log as
 * rewritten in place. A failed sync is reported once at ERROR. Throws what settling or that
 * first sync threw.
 */
export function openWalSync(db: BetterSqlite3.Database, sync: SyncFile | undefined, logger: Logger | undefined): WalSync {
  const { walFile, unsettled } = settleLog(db, logger);
  const wal = new WalSync(walFile, sync);
  if (unsettled) wal.rewriteBeforeWrites();
  wal.onRewritten = () => logger?.info('the database log was rewritten in place and synced before the first write');
  try {
    wal.openNow();
  } catch (e) {
    void wal.close();
    throw e;
  }
  wal.onFailure = (e) => logger?.error({ err: e.code ?? 'error', alarm: 'wal_sync_failed' },
    'syncing the database log failed: writes and reads are refused until Nexus is restarted (what was committed since the last sync may not be on disk)');
  return wal;
}

/** How the WAL file is synced (tests inject a slow or failing one). */
export type SyncFile = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;

/** Syncs in flight at once. */
const MAX_IN_FLIGHT = 2;

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: StoreError) => void;
}

export class WalSync {
  readonly #file: string;
  readonly #sync: SyncFile;
  /** Set while the log still has to be rewritten before the first write ({@link rewriteBeforeWrites}). */
  #unsettled = false;
  /**
   * One descriptor per sync slot, each its own open of the file: Linux reports a writeback
   * error once per open file description, so two syncs on one descriptor could see it only
   * once, and the one that returned 0 would acknowledge writes that never reached the disk.
   */
  readonly #fds: Array<number | undefined> = [];
  readonly #freeSlots: number[] = [];
  /** Commits noted so far, and how many of them a completed sync covers. */
  #committed = 0;
  #durable = 0;
  /** The highest commit a sync in flight covers. */
  #started = 0;
  #waiters: Waiter[] = [];
  /** Set by the first failed sync. */
  #failed: NodeJS.ErrnoException | undefined;
  /** Called once, with the error, when a sync fails (the store logs it). */
  onFailure: ((e: NodeJS.ErrnoException) => void) | undefined;
  /** Called once the log left unsettled at start was rewritten ({@link beforeWrites}). */
  onRewritten: (() => void) | undefined;

  /** `file`: the database's WAL file (`<db>-wal`, the path SQLite itself uses); opened at the first sync. */
  constructor(file: string, sync: SyncFile = fs.fdatasync) {
    this.#file = file;
    this.#sync = sync;
    for (let i = MAX_IN_FLIGHT - 1; i >= 0; i--) this.#freeSlots.push(i);
  }

  /**
   * The log could not be settled at start (settle-log.ts): {@link beforeWrites} rewrites it,
   * under the first write batch's lock, before that batch writes anything.
   */
  rewriteBeforeWrites(): void {
    this.#unsettled = true;
  }

  /**
   * Called by the group commit right after it took SQLite's write lock, before any write of the
   * batch runs: rewrites a log left unsettled at start, once. Throws what the rewrite threw (the
   * batch is then refused, nothing applied, and the next batch tries again).
   */
  beforeWrites(): void {
    if (!this.#unsettled) return;
    rewriteLog(this.#file);
    this.#unsettled = false;
    this.onRewritten?.();
  }

  /** Records a COMMIT that just returned; its number, to wait for with {@link until}. */
  noteCommit(): number {
    return ++this.#committed;
  }

  /** The number of the last commit noted. */
  committed(): number {
    return this.#committed;
  }

  /** The number of the last commit known to be on disk. */
  durable(): number {
    return this.#durable;
  }

  /**
   * Once a sync failed, the error every later operation fails with (`outcome`: what it did to
   * the data, e.g. `not_applied` for a write refused before it ran); undefined before.
   */
  failed(outcome?: StoreOutcome): StoreError | undefined {
    if (this.#failed === undefined) return undefined;
    // The fault's one ERROR line is the alarm written when it happened (onFailure, or the checkpointer's).
    return new StoreError('store_unavailable', { failure: 'io_error', cause: this.#failed, alarmed: true, ...(outcome ? { outcome } : {}) });
  }

  /**
   * Resolves once commit `seq` (and all before it) is on disk; undefined when it already is.
   * Rejects when a sync fails (for a write waiting here: committed, durability unknown).
   */
  until(seq: number): Promise<void> | undefined {
    if (this.#failed) return Promise.reject(this.failed('unknown'));
    if (seq <= this.#durable) return undefined;
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Opens every slot's descriptor and syncs the log once, at once (start-up: nothing is served
   * yet). One sync writes the file whichever descriptor it goes through.
   */
  openNow(): void {
    for (let slot = 0; slot < MAX_IN_FLIGHT; slot++) this.#fds[slot] ??= fs.openSync(this.#file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    fs.fdatasyncSync(this.#fds[0]!);
  }

  /** Resolves once no sync runs; closes the WAL file. */
  async close(): Promise<void> {
    while (this.#freeSlots.length < MAX_IN_FLIGHT) await new Promise((r) => setImmediate(r));
    for (const fd of this.#fds.splice(0)) if (fd !== undefined) fs.closeSync(fd);
  }

  /** Starts a sync when a waiter's commit is not covered by one in flight (and a slot is free). */
  #kick(): void {
    if (this.#freeSlots.length === 0 || this.#failed) return;
    if (!this.#waiters.some((w) => w.seq > this.#started)) return;
    const slot = this.#freeSlots.pop()!;
    let fd: number;
    try {
      fd = this.#fds[slot] ??= fs.openSync(this.#file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      this.#freeSlots.push(slot);
      this.#fail(e as NodeJS.ErrnoException);
      return;
    }
    const target = this.#committed;
    this.#started = target;
    this.#sync(fd, (err) => {
      this.#freeSlots.push(slot);
      if (this.#failed) return;
      if (err) {
        this.#fail(err);
        return;
      }
      if (target > this.#durable) this.#durable = target;
      const durable = this.#durable;
      const ready = this.#waiters.filter((w) => w.seq <= durable);
      if (ready.length > 0) this.#waiters = this.#waiters.filter((w) => w.seq > durable);
      for (const w of ready) w.resolve();
      this.#kick();
    });
  }

  /**
   * Refuses every later write and read until a restart, as a failed sync does, for a failure
   * found elsewhere (a checkpoint: checkpointer.ts, which logs its own line).
   */
  fail(err: NodeJS.ErrnoException): void {
    if (this.#failed === undefined) this.#fail(err, false);
  }

  #fail(err: NodeJS.ErrnoException, report = true): void {
    this.#failed = err;
    keepLog(this.#file.slice(0, -'-wal'.length));
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.reject(this.failed('unknown')!);
    if (report) this.onFailure?.(err);
  }
}

/** Read-only connections that keep a failed store's log (never closed: see keepLog). */
const logKeepers: BetterSqlite3.Database[] = [];

/**
 * After a failed sync, keeps the log from being folded into the database file and deleted when
 * the store's connection closes (SQLite checkpoints at the last close): a sync through a
 * descriptor that already reported the error returns 0 for pages the kernel dropped, so that
 * last checkpoint could declare the log copied when the file is not on disk. A read-only
 * connection, open until the process exits, holds the file's shared lock, so the store's close
 * is not the last one, and a read-only close never checkpoints. The next start then finds the
 * whole log, rebuilds its index (nothing counted as copied) and copies all of it into the
 * database file, synced, before serving, or, when it cannot (another process's reader, a full
 * disk), rewrites the log in place and syncs it (settle-log.ts). Best effort: if even that open
 * fails, the log is as SQLite leaves it.
 */
function keepLog(dbFile: string): void {
  try {
    const db = openSqlite(dbFile, { readonly: true, fileMustExist: true });
    db.prepare('SELECT count(*) FROM sqlite_master').get(); // takes the shared lock (WAL mode keeps it)
    logKeepers.push(db);
  } catch {
    // not a database (unit tests of the sync alone), or the disk is gone: nothing more to do
  }
}
