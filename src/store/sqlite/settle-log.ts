/**
 * The `sqlite` backend's log at start, before a lone store serves (wal-sync.ts): made durable
 * whatever the previous process left in it.
 *
 * A TRUNCATE checkpoint copies every frame of the log into the database file, syncs it and
 * empties the log, so nothing a previous process committed without a sync (killed, or its sync
 * failed: the page cache keeps pages that failed to write, marked clean, and no new sync would
 * write them) is served before it is on disk.
 *
 * When the checkpoint cannot complete (a reader in another process holds an older snapshot
 * past the busy timeout; a disk too full for the database file to grow, SQLITE_FULL, which
 * counts nothing as copied) the log is rewritten in place instead: every block read and written
 * back under SQLite's write lock, then synced. A sync alone writes only dirty pages, so pages
 * of the log left clean after a failed sync would be served and built on, and lost with the
 * page cache, and every later commit with them (a log ends at its first bad frame).
 * Overwriting blocks the file already has needs no new space on most file systems. When the
 * rewrite cannot run now (another process holds the write lock too; a copy-on-write file
 * system or a quota with no room for it) the log is left *unsettled*: reads are served, and the
 * first write batch rewrites it under its own write lock before any write runs, or is refused
 * (nothing applied) while that fails (wal-sync.ts `beforeWrites`).
 */
import fs from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../../lib/index.js';
import { StoreError } from '../types.js';

/** Bytes of the log read and written back at a time. */
const REWRITE_CHUNK = 1 << 20;

/** The file operations of a rewrite (tests record them). */
export interface LogIo {
  read(fd: number, buf: Buffer, position: number): number;
  write(fd: number, buf: Buffer, offset: number, length: number, position: number): number;
  sync(fd: number): void;
}

const FS_IO: LogIo = {
  read: (fd, buf, position) => fs.readSync(fd, buf, 0, buf.length, position),
  write: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  sync: (fd) => fs.fdatasyncSync(fd),
};

/** The database file as SQLite itself names it (symlinks resolved; its log is this name + `-wal`). */
export function databaseFile(db: BetterSqlite3.Database): string {
  const main = (db.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
  if (main === undefined || main.file === '') throw new StoreError('store_unavailable');
  return main.file;
}

/**
 * Settles the log (see the module comment). `walFile`: its path (`spike.db` may be a symlink;
 * SQLite names the log after the file it resolves to); `unsettled`: it still has to be
 * rewritten before the first write. Throws on an I/O error. `io`: the rewrite's file operations
 * (tests).
 */
export function settleLog(db: BetterSqlite3.Database, logger: Logger | undefined, io: LogIo = FS_IO): { walFile: string; unsettled: boolean } {
  const walFile = `${databaseFile(db)}-wal`;
  let cause: string;
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    if ((r?.busy ?? 0) === 0) return { walFile, unsettled: false };
    cause = 'another process kept the database log from being checkpointed at start';
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'SQLITE_FULL') throw e;
    cause = 'the disk is full: the database log could not be copied into the database file at start';
  }
  const done = rewriteUnderLock(db, walFile, io);
  if (done === 'rewritten') {
    logger?.warn({ cause: 'log_not_checkpointed' }, `${cause}; it is rewritten in place and synced instead`);
    return { walFile, unsettled: false };
  }
  const why = done === 'locked' ? 'another process holds the write lock' : 'the file system has no room to rewrite it in place';
  logger?.warn({ cause: 'log_not_checkpointed' }, `${cause}, and ${why}; reads are served, and the log is rewritten in place and synced before the first write (writes are refused while that fails)`);
  return { walFile, unsettled: true };
}

/** Rewrites the log under a write lock of its own; `locked`/`no_space`: it could not, now. */
function rewriteUnderLock(db: BetterSqlite3.Database, walFile: string, io: LogIo): 'rewritten' | 'locked' | 'no_space' {
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (e) {
    if (String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) return 'locked';
    throw e;
  }
  try {
    rewriteLog(walFile, io);
    return 'rewritten';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'no_space';
    throw e;
  } finally {
    db.exec('ROLLBACK');
  }
}

/**
 * Reads every block of the log and writes it back in place, then syncs it. The caller holds
 * SQLite's write lock (nothing else writes or truncates the log meanwhile). Throws what the
 * file system threw (ENOSPC where overwriting needs new blocks: copy-on-write, quotas).
 */
export function rewriteLog(walFile: string, io: LogIo = FS_IO): void {
  let fd: number;
  try {
    fd = fs.openSync(walFile, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // no log: nothing to keep
    throw e;
  }
  const buf = Buffer.allocUnsafe(REWRITE_CHUNK);
  try {
    for (let off = 0; ;) {
      const n = io.read(fd, buf, off);
      if (n === 0) break;
      for (let w = 0; w < n;) w += io.write(fd, buf, w, n - w, off + w);
      off += n;
    }
    io.sync(fd);
  } finally {
    buf.fill(0);
    fs.closeSync(fd);
  }
}
