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
 * Overwriting blocks the file already has needs no new space. Only when another process holds
 * the write lock too is the log just synced (a WARN line says which).
 */
import fs from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../../lib/index.js';
import { StoreError } from '../types.js';

/** Bytes of the log read and written back at a time. */
const REWRITE_CHUNK = 1 << 20;

/** The database file as SQLite itself names it (symlinks resolved; its log is this name + `-wal`). */
export function databaseFile(db: BetterSqlite3.Database): string {
  const main = (db.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
  if (main === undefined || main.file === '') throw new StoreError('store_unavailable');
  return main.file;
}

/**
 * Settles the log (see the module comment) and returns its path (`spike.db` may be a symlink;
 * SQLite names the log after the file it resolves to). Throws on an I/O error.
 */
export function settleLog(db: BetterSqlite3.Database, logger: Logger | undefined): string {
  const walFile = `${databaseFile(db)}-wal`;
  let cause: 'busy' | 'full';
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    if ((r?.busy ?? 0) === 0) return walFile;
    cause = 'busy';
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'SQLITE_FULL') throw e;
    cause = 'full';
  }
  const rewritten = rewriteLog(db, walFile);
  const how = rewritten ? 'it is rewritten in place and synced instead' : 'another process holds the write lock too, so it is only synced';
  if (cause === 'busy') logger?.warn(`another process kept the database log from being checkpointed at start; ${how}`);
  else logger?.warn({ err: 'SQLITE_FULL', cause: 'disk_full' }, `the disk is full: the database log could not be copied into the database file at start; ${how}, and reads are served (free space on the volume that holds the store)`);
  return walFile;
}

/** Reads every block of the log and writes it back in place, under the write lock, then syncs it. False: the write lock is taken. */
function rewriteLog(db: BetterSqlite3.Database, walFile: string): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
  } catch (e) {
    if (String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) return false;
    throw e;
  }
  const buf = Buffer.allocUnsafe(REWRITE_CHUNK);
  try {
    let fd: number;
    try {
      fd = fs.openSync(walFile, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true; // no log: nothing to keep
      throw e;
    }
    try {
      for (let off = 0; ;) {
        const n = fs.readSync(fd, buf, 0, buf.length, off);
        if (n === 0) break;
        for (let w = 0; w < n;) w += fs.writeSync(fd, buf, w, n - w, off + w);
        off += n;
      }
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } finally {
    buf.fill(0);
    db.exec('ROLLBACK');
  }
}
