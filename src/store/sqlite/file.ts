/**
 * The `sqlite` backend's database file: opening it safely, and mapping driver errors.
 *
 * A new database is built under a temporary name (mode 0600) and linked into place, so
 * `spike.db` is never an empty or half-initialised file; an existing file that is empty,
 * not SQLite, or not ours is refused (`store_corrupt`), never overwritten. Every open
 * migrates the schema (schema.ts), then sets WAL, `synchronous=FULL`, `secure_delete`,
 * `trusted_schema=OFF` and the busy timeout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { StoreError } from '../types.js';
import { initialiseFresh, migrate } from './schema.js';

/** Maps driver/crypto errors onto StoreError codes; StoreErrors pass through. */
export function toStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  if (code === 'crypto_decrypt_failed') return new StoreError('store_integrity', { cause: e });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreError('store_busy', { cause: e });
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return new StoreError('store_corrupt', { cause: e });
  return new StoreError('store_unavailable', { cause: e });
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
    const db = new Database(tmp, { timeout: busyTimeoutMs });
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
export function openDatabase(file: string, busyTimeoutMs: number): BetterSqlite3.Database {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError('store_unavailable', { cause: e });
  }
  if (st && (!st.isFile() || st.size === 0)) throw new StoreError('store_corrupt');
  if (!st) {
    try {
      createFresh(file, busyTimeoutMs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw toStoreError(e);
    }
  }
  let db: BetterSqlite3.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: busyTimeoutMs });
  } catch (e) {
    throw toStoreError(e);
  }
  try {
    migrate(db); // first read of the header: NOTADB/CORRUPT surface here
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new StoreError('store_unavailable');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.pragma('trusted_schema = OFF');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  } catch (e) {
    db.close();
    throw toStoreError(e);
  }
  secureMode(file);
  return db;
}
