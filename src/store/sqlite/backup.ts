/**
 * Online backup of the `sqlite` backend's file (docs/backup.md), for `spike-nexus backup`.
 *
 * The copy is taken with SQLite's online backup API through a second connection while Nexus
 * keeps serving: every page is copied in ONE backup step, i.e. inside one read transaction,
 * so the copy is the database exactly as of one commit (in WAL mode a reader never blocks
 * Nexus's writers). The copy is switched out of WAL mode (a single self-contained file),
 * checked (`integrity_check`, our application id and schema), fsynced, and only then linked
 * or renamed into place and the folder fsynced: the destination is either absent or a
 * complete, checked backup, mode 0600. Records stay sealed with the root key exactly as in
 * the store: the file is useless without the root key (the recovery shards).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { openSqlite } from '../drivers.js';
import { KEY_CHECK_RECORD } from '../key-check.js';
import { checkSchema } from './schema.js';

/** A refusal or failure of a backup, with a one-line, operator-readable message. */
export class BackupError extends Error {
  readonly code: 'backup_refused' | 'backup_failed';
  constructor(code: 'backup_refused' | 'backup_failed', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'BackupError';
  }
}

export interface SqliteBackupOptions {
  /** The live store file (`<dataDir>/spike.db`). */
  source: string;
  /** The backup file to write; its folder must exist and lie outside the source's folder. */
  dest: string;
  /** Replace an existing `dest` (atomically). Default: refuse. */
  force?: boolean;
  /** How long to wait for a lock on the source (ms); default 5000. */
  busyTimeoutMs?: number;
}

/** What a backup file holds (counts only: every record is sealed). */
export interface BackupInfo {
  file: string;
  bytes: number;
  secrets: number;
  secretVersions: number;
  policies: number;
  /** The file carries the key-check record (it was written after Bootstrap). */
  initialised: boolean;
}

/** Every remaining page in one step (the largest value better-sqlite3 passes on). */
const ALL_PAGES = 0x7fffffff;

function errorText(e: unknown): string {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
  const msg = e instanceof Error ? e.message : String(e);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
}

function fsyncPath(p: string, flags: string): void {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Checks source and destination; returns the absolute destination path. */
function preflight(source: string, dest: string, force: boolean): string {
  let src: fs.Stats;
  try {
    src = fs.statSync(source);
  } catch {
    throw new BackupError('backup_refused', `no SQLite store at ${source} (check SPIKE_NEXUS_DATA_DIR)`);
  }
  if (!src.isFile() || src.size === 0) throw new BackupError('backup_refused', `${source} is not a store file`);
  const abs = path.resolve(dest);
  const dir = path.dirname(abs);
  let realDir: string;
  try {
    realDir = fs.realpathSync(dir);
    if (!fs.statSync(realDir).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new BackupError('backup_refused', `destination folder ${dir} does not exist`);
  }
  const dataDir = fs.realpathSync(path.dirname(source));
  if (isInside(realDir, dataDir)) {
    throw new BackupError('backup_refused', `destination ${abs} is inside the live data directory ${dataDir}; write the backup elsewhere`);
  }
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(abs);
  } catch {
    // absent: fine
  }
  if (existing && !existing.isFile()) throw new BackupError('backup_refused', `destination ${abs} exists and is not a regular file`);
  if (existing && !force) throw new BackupError('backup_refused', `destination ${abs} already exists (use --force to replace it)`);
  return abs;
}

function count(db: BetterSqlite3.Database, table: string): number {
  return Number(db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());
}

/** Opens a backup copy (never the live store), checks it fully and counts its records. */
function inspect(db: BetterSqlite3.Database, file: string): BackupInfo {
  const problems = db.pragma('integrity_check', { simple: false }) as Array<{ integrity_check: string }>;
  if (problems.length !== 1 || problems[0]!.integrity_check !== 'ok') {
    throw new BackupError('backup_failed', `${file} fails the SQLite integrity check`);
  }
  try {
    checkSchema(db);
  } catch (e) {
    throw new BackupError('backup_failed', `${file} is not a SPIKE store (${errorText(e)})`, { cause: e });
  }
  return {
    file,
    bytes: fs.statSync(file).size,
    secrets: count(db, 'secrets'),
    secretVersions: count(db, 'secret_versions'),
    policies: count(db, 'policies'),
    initialised: db.prepare('SELECT 1 FROM system WHERE key = ?').pluck().get(KEY_CHECK_RECORD) !== undefined,
  };
}

/** Takes the copy into `tmp` (an existing empty 0600 file) and makes it a checked, single file. */
async function copyInto(source: string, tmp: string, busyTimeoutMs: number): Promise<BackupInfo> {
  let src: BetterSqlite3.Database;
  try {
    src = openSqlite(source, { fileMustExist: true, timeout: busyTimeoutMs });
  } catch (e) {
    throw new BackupError('backup_failed', `cannot open ${source}: ${errorText(e)}`, { cause: e });
  }
  try {
    checkSchema(src);
    await src.backup(tmp, { progress: () => ALL_PAGES });
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError('backup_failed', `cannot copy ${source}: ${errorText(e)}`, { cause: e });
  } finally {
    src.close();
  }
  const copy = openSqlite(tmp, { fileMustExist: true });
  try {
    // A rollback-journal file needs no -wal/-shm beside it; Nexus turns WAL back on when it opens it.
    copy.pragma('journal_mode = DELETE');
    return inspect(copy, tmp);
  } finally {
    copy.close();
  }
}

/** Puts `tmp` at `dest`: link (refuses a file created meanwhile) or, with force, rename over it. */
function place(tmp: string, dest: string, force: boolean): void {
  if (force) {
    fs.renameSync(tmp, dest);
    return;
  }
  try {
    fs.linkSync(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new BackupError('backup_refused', `destination ${dest} already exists (use --force to replace it)`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    if (fs.existsSync(dest)) throw new BackupError('backup_refused', `destination ${dest} already exists (use --force to replace it)`);
    fs.renameSync(tmp, dest); // filesystems without hard links
  }
}

/**
 * Writes a consistent backup of the live store `source` to `dest` (see the file comment).
 * Throws {@link BackupError}; on any failure `dest` is untouched and no temporary file stays.
 */
export async function backupSqliteFile(opts: SqliteBackupOptions): Promise<BackupInfo> {
  const force = opts.force === true;
  const dest = preflight(opts.source, opts.dest, force);
  const dir = path.dirname(dest);
  const tmp = path.join(dir, `.${path.basename(dest)}.tmp-${randomBytes(6).toString('hex')}`);
  const leftovers = [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`];
  try {
    fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
    const info = await copyInto(opts.source, tmp, opts.busyTimeoutMs ?? 5000);
    fs.chmodSync(tmp, 0o600);
    fsyncPath(tmp, 'r+');
    place(tmp, dest, force);
    fsyncPath(dir, 'r');
    return { ...info, file: dest };
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError('backup_failed', `backup to ${dest} failed: ${errorText(e)}`, { cause: e });
  } finally {
    for (const f of leftovers) fs.rmSync(f, { force: true });
  }
}

/**
 * Checks a backup file without the root key and without changing it: SQLite integrity,
 * our application id and schema, and record counts. Throws {@link BackupError}.
 */
export function verifySqliteBackup(file: string): BackupInfo {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new BackupError('backup_refused', `no file at ${abs}`);
  }
  if (!st.isFile() || st.size === 0) throw new BackupError('backup_failed', `${abs} is not a backup file`);
  // A file in WAL mode is not one `spike-nexus backup` wrote (those use a rollback journal),
  // and SQLite would create its -wal and -shm files beside it even when opened read-only.
  if (inWalMode(abs)) {
    throw new BackupError('backup_refused', `${abs} is in WAL mode: not a file written by \`spike-nexus backup\` (a copy of a live store?); verify a backup made with \`spike-nexus backup\``);
  }
  let db: BetterSqlite3.Database;
  try {
    db = openSqlite(abs, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new BackupError('backup_failed', `cannot open ${abs}: ${errorText(e)}`, { cause: e });
  }
  try {
    return inspect(db, abs);
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError('backup_failed', `${abs} is not a readable SQLite file: ${errorText(e)}`, { cause: e });
  } finally {
    db.close();
  }
}

/** True when `file` is an SQLite database whose header says WAL mode (read/write versions 2). */
function inWalMode(file: string): boolean {
  const head = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.readSync(fd, head, 0, 20, 0) < 20) return false;
  } finally {
    fs.closeSync(fd);
  }
  return head.subarray(0, 16).equals(Buffer.from('SQLite format 3\0', 'latin1')) && (head[18] === 2 || head[19] === 2);
}
