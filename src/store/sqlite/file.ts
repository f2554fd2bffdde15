/**
 * The `sqlite` backend's database file: opening it safely, and mapping driver errors.
 *
 * A new database is built under a temporary name (mode 0600) and linked into place, so
 * `spike.db` is never an empty or half-initialised file; an existing file that is empty,
 * not SQLite, or not ours is refused (`store_corrupt`), never overwritten. Every open
 * migrates the schema (schema.ts), then sets WAL, `synchronous` (FULL, or NORMAL when the
 * store syncs the WAL itself: wal-sync.ts), `secure_delete`, `trusted_schema=OFF` and the busy
 * timeout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { openSqlite } from '../drivers.js';
import { StoreError, type StoreFailureCause } from '../types.js';
import { initialiseFresh, migrate } from './schema.js';

/**
 * What an unspecific I/O error (SQLITE_IOERR_*, SQLITE_CANTOPEN) of the database in `dir`
 * most likely was, from the file system as it is now: read-only, full, or another I/O error.
 */
function diagnose(dir: string | undefined): StoreFailureCause {
  if (dir === undefined) return 'io_error';
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    if (c === 'EROFS' || c === 'EACCES' || c === 'EPERM') return 'read_only';
  }
  try {
    const st = fs.statfsSync(dir);
    if (st.bavail === 0 || st.ffree === 0) return 'disk_full';
  } catch {
    // no answer: keep the generic cause
  }
  return 'io_error';
}

/** The cause a driver or file-system error code names, if it names one. */
function failureOf(code: string, dir: string | undefined): StoreFailureCause | undefined {
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'disk_full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || code.startsWith('SQLITE_PERM')) return 'read_only';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code === 'EIO') return diagnose(dir);
  return undefined;
}

/**
 * Names the cause of an error mapped without knowing the database's folder (in the group
 * commit), now that `dir` is known; other errors, and a stopped store's (already alarmed),
 * are returned unchanged.
 */
export function refineStoreError(err: StoreError, dir: string): StoreError {
  if (err.code !== 'store_unavailable' || (err.failure !== undefined && err.failure !== 'io_error') || err.cause === undefined || err.alarmed) return err;
  const refined = toStoreError(err.cause, dir);
  refined.outcome ??= err.outcome; // what the operation did to the data stays known
  return refined;
}

/**
 * Maps driver/crypto errors onto StoreError codes; StoreErrors pass through. `dir` (the
 * database's folder) lets an unspecific I/O error be told apart (full, read-only, other).
 */
export function toStoreError(e: unknown, dir?: string): StoreError {
  if (e instanceof StoreError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  if (code === 'crypto_decrypt_failed') return new StoreError('store_integrity', { cause: e });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreError('store_busy', { cause: e });
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return new StoreError('store_corrupt', { cause: e });
  const failure = failureOf(code, dir);
  return new StoreError('store_unavailable', failure === undefined ? { cause: e } : { cause: e, failure });
}

function secureMode(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch {
      // absent: fine
    }
  }
}

/** Builds a fresh database next to `file` and links it into place (never over an existing file). */
function createFresh(file: string, busyTimeoutMs: number): void {
  const tmp = `${file}.init-${randomBytes(6).toString('hex')}`;
  fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
  try {
    const db = openSqlite(tmp, { timeout: busyTimeoutMs });
    try {
      initialiseFresh(db);
    } finally {
      db.close();
    }
    for (const ext of ['-wal', '-shm']) fs.rmSync(`${tmp}${ext}`, { force: true });
    try {
      fs.linkSync(tmp, file); // fails with EEXIST instead of replacing a file created meanwhile
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
      if (fs.existsSync(file)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
      fs.renameSync(tmp, file); // filesystems without hard links
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

/** Opens (creating when absent) and migrates `file`; its folder is created 0700 if missing. */
/** Runs a synchronous read in one read transaction (deferred BEGIN … COMMIT): its statements see one commit. */
export type ReadTransaction = <T>(fn: () => T) => T;

/** A {@link ReadTransaction} on `db` (inside an open transaction, `fn` simply runs in it). */
export function readTransaction(db: BetterSqlite3.Database): ReadTransaction {
  const begin = db.prepare('BEGIN');
  const commit = db.prepare('COMMIT');
  return <T>(fn: () => T): T => {
    if (db.inTransaction) return fn();
    begin.run();
    try {
      return fn();
    } finally {
      if (db.inTransaction) commit.run();
    }
  };
}

export function openDatabase(file: string, busyTimeoutMs: number, synchronous: 'FULL' | 'NORMAL' = 'FULL'): BetterSqlite3.Database {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw toStoreError(e, dir);
  }
  if (st && (!st.isFile() || st.size === 0)) throw new StoreError('store_corrupt');
  if (!st) {
    try {
      createFresh(file, busyTimeoutMs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw toStoreError(e, dir);
    }
  }
  let db: BetterSqlite3.Database;
  try {
    db = openSqlite(file, { fileMustExist: true, timeout: busyTimeoutMs });
  } catch (e) {
    throw toStoreError(e, dir);
  }
  try {
    migrate(db); // first read of the header: NOTADB/CORRUPT surface here
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new StoreError('store_unavailable');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('secure_delete = ON');
    db.pragma('trusted_schema = OFF');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  } catch (e) {
    db.close();
    throw toStoreError(e, dir);
  }
  secureMode(file);
  return db;
}
