/**
 * `sqlite` backend (better-sqlite3): one file, WAL, `synchronous=FULL`, every secret and
 * policy field sealed (codec.ts, D8/D9), schema versioned (sqlite-schema.ts).
 *
 * Writes (D12, D13): each write is a synchronous read-modify-write closure. Closures are
 * queued and run by `flush()` on the next turn of the event loop (`setImmediate`, or a
 * small timer when `groupCommitWindowMs` > 0): every closure queued by then shares ONE
 * `BEGIN IMMEDIATE … COMMIT` — one fsync — and runs inside its own SAVEPOINT, so a failing
 * write (cas mismatch, integrity error) is rolled back alone. Promises settle only after
 * COMMIT returned; if COMMIT fails, every write of the batch is rejected. Because
 * better-sqlite3 is synchronous and single-connection, nothing can interleave with a batch,
 * so the closure's read and write are atomic within this process, and `BEGIN IMMEDIATE`
 * takes SQLite's write lock up front against other processes.
 *
 * Reads run synchronously outside the queue and see the last committed state.
 *
 * File handling: a new database is built under a temporary name (mode 0600) and renamed
 * into place, so `spike.db` is never an empty or half-initialised file; an existing file
 * that is empty, not SQLite, or not ours is refused (`store_corrupt`), never overwritten.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../../lib/log.js';
import type { RootKey } from '../../crypto/index.js';
import { RecordSealer } from '../codec.js';
import { compareCodeUnits } from '../memory.js';
import {
  applyDelete, applyDestroy, applyPut, applyUndelete, copyStringMap, DEFAULT_MAX_VERSIONS, resolveReadVersion,
  toMetadata, type SecretState,
} from '../model.js';
import { initialiseFresh, migrate } from './schema.js';
import {
  StoreError, type CommonStoreOptions, type PolicyInput, type PolicyRecord, type PutSecretOptions,
  type SecretMetadata, type SecretVersionInfo, type Store,
} from '../types.js';

export interface SqliteStoreOptions extends CommonStoreOptions {
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
  logger?: Logger;
}

const DEFAULTS = {
  busyTimeoutMs: 5000,
  groupCommit: true,
  maxBatch: 128,
  groupCommitWindowMs: 0,
} as const;

interface PendingWrite {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

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

/** Builds a fresh database next to `file` and renames it into place (never over an existing file). */
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

function openDatabase(file: string, busyTimeoutMs: number): BetterSqlite3.Database {
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

interface Statements {
  begin: BetterSqlite3.Statement;
  commit: BetterSqlite3.Statement;
  rollback: BetterSqlite3.Statement;
  savepoint: BetterSqlite3.Statement;
  release: BetterSqlite3.Statement;
  rollbackTo: BetterSqlite3.Statement;
  getSystem: BetterSqlite3.Statement;
  putSystemIfAbsent: BetterSqlite3.Statement;
  putSystem: BetterSqlite3.Statement;
  getMeta: BetterSqlite3.Statement;
  insertSecret: BetterSqlite3.Statement;
  updateMeta: BetterSqlite3.Statement;
  listSecrets: BetterSqlite3.Statement;
  hasVersions: BetterSqlite3.Statement;
  getValue: BetterSqlite3.Statement;
  getForRead: BetterSqlite3.Statement;
  putValue: BetterSqlite3.Statement;
  deleteValue: BetterSqlite3.Statement;
  getPolicy: BetterSqlite3.Statement;
  putPolicy: BetterSqlite3.Statement;
  deletePolicy: BetterSqlite3.Statement;
  listPolicies: BetterSqlite3.Statement;
  getGeneration: BetterSqlite3.Statement;
  bumpGeneration: BetterSqlite3.Statement;
}

function prepare(db: BetterSqlite3.Database): Statements {
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT op'),
    release: db.prepare('RELEASE op'),
    rollbackTo: db.prepare('ROLLBACK TO op'),
    getSystem: db.prepare('SELECT value FROM system WHERE key = ?').pluck(),
    putSystemIfAbsent: db.prepare('INSERT OR IGNORE INTO system (key, value) VALUES (?, ?)'),
    putSystem: db.prepare('INSERT OR REPLACE INTO system (key, value) VALUES (?, ?)'),
    getMeta: db.prepare('SELECT meta FROM secrets WHERE id = ?').pluck(),
    insertSecret: db.prepare('INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)'),
    updateMeta: db.prepare('UPDATE secrets SET meta = ? WHERE id = ?'),
    listSecrets: db.prepare('SELECT id, path FROM secrets'),
    hasVersions: db.prepare('SELECT 1 FROM secret_versions WHERE id = ? LIMIT 1').pluck(),
    getValue: db.prepare('SELECT value FROM secret_versions WHERE id = ? AND version = ?').pluck(),
    // A read in one statement (one implicit read transaction instead of two): the metadata
    // row plus the value row of the asked version, or of the highest version when none was
    // asked (normally the current one; `getSecret` falls back to `getValue` when not).
    getForRead: db.prepare(`SELECT s.meta, v.version, v.value FROM secrets s
      LEFT JOIN secret_versions v ON v.id = s.id
       AND v.version = CASE WHEN @v > 0 THEN @v ELSE (SELECT MAX(version) FROM secret_versions WHERE id = @id) END
      WHERE s.id = @id`).raw(),
    putValue: db.prepare('INSERT OR REPLACE INTO secret_versions (id, version, value) VALUES (?, ?, ?)'),
    deleteValue: db.prepare('DELETE FROM secret_versions WHERE id = ? AND version = ?'),
    getPolicy: db.prepare('SELECT body FROM policies WHERE id = ?').pluck(),
    putPolicy: db.prepare('INSERT OR REPLACE INTO policies (id, body) VALUES (?, ?)'),
    deletePolicy: db.prepare('DELETE FROM policies WHERE id = ?'),
    listPolicies: db.prepare('SELECT id, body FROM policies'),
    getGeneration: db.prepare(`SELECT value FROM counters WHERE name = 'policy_generation'`).pluck(),
    bumpGeneration: db.prepare(`UPDATE counters SET value = value + 1 WHERE name = 'policy_generation'`),
  };
}

const YIELD_EVERY = 500;
/** System record holding the store's own key check (see `unlock`). */
export const STORE_CHECK_KEY = 'store/key-check';
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly file: string;
  #db: BetterSqlite3.Database;
  #st: Statements;
  #sealer: RecordSealer | null = null;
  #queue: PendingWrite[] = [];
  #scheduled = false;
  #closing = false;
  #closed = false;
  #drained: (() => void)[] = [];
  #stats = { transactions: 0, writes: 0 };
  readonly #opts: Required<Omit<SqliteStoreOptions, 'logger' | 'now' | 'file'>> & { logger?: Logger; now: () => Date };

  /** Use `openSqliteStore` (or `openStore`); the constructor opens the file synchronously. */
  constructor(opts: SqliteStoreOptions) {
    this.#opts = {
      busyTimeoutMs: opts.busyTimeoutMs ?? DEFAULTS.busyTimeoutMs,
      groupCommit: opts.groupCommit ?? DEFAULTS.groupCommit,
      maxBatch: Math.max(1, opts.maxBatch ?? DEFAULTS.maxBatch),
      groupCommitWindowMs: opts.groupCommitWindowMs ?? DEFAULTS.groupCommitWindowMs,
      defaultMaxVersions: opts.defaultMaxVersions ?? DEFAULT_MAX_VERSIONS,
      now: opts.now ?? (() => new Date()),
      ...(opts.logger ? { logger: opts.logger } : {}),
    };
    this.file = opts.file;
    this.#db = openDatabase(opts.file, this.#opts.busyTimeoutMs);
    this.#st = prepare(this.#db);
  }

  // --- plumbing -----------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw new StoreError('store_closed');
  }

  #sealerOrThrow(): RecordSealer {
    this.#checkOpen();
    if (!this.#sealer) throw new StoreError('store_locked');
    return this.#sealer;
  }

  /** Runs a synchronous read; driver errors become StoreErrors. */
  #read<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return fn();
    } catch (e) {
      throw toStoreError(e);
    }
  }

  /** Queues a read-modify-write closure; resolves after its transaction committed. */
  #write<T>(run: () => T): Promise<T> {
    this.#checkOpen();
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const go = (): void => {
      this.#scheduled = false;
      this.#flush();
    };
    if (this.#opts.groupCommitWindowMs > 0) setTimeout(go, this.#opts.groupCommitWindowMs);
    else setImmediate(go);
  }

  #flush(): void {
    const size = this.#opts.groupCommit ? this.#opts.maxBatch : 1;
    const batch = this.#queue.splice(0, size);
    if (this.#queue.length > 0) this.#schedule();
    if (batch.length > 0) this.#runBatch(batch);
    if (this.#queue.length === 0) {
      const waiters = this.#drained.splice(0);
      for (const w of waiters) w();
    }
  }

  #runBatch(batch: PendingWrite[]): void {
    const st = this.#st;
    try {
      st.begin.run();
    } catch (e) {
      const err = toStoreError(e);
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
    if (!aborted) {
      try {
        st.commit.run();
      } catch (e) {
        aborted = toStoreError(e);
      }
    }
    this.#stats.transactions++;
    this.#stats.writes += batch.length;
    if (aborted) {
      try {
        if (this.#db.inTransaction) st.rollback.run();
      } catch {
        // nothing more to undo
      }
      this.#opts.logger?.error({ err: aborted.code }, 'store write batch rolled back');
      for (const op of batch) op.reject(aborted);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const o = outcomes[i]!;
      const op = batch[i]!;
      if (o.ok) op.resolve(o.value);
      else op.reject(o.error);
    }
  }

  /**
   * The decoded state of a secret, or null when the path is unknown. Version rows without
   * their metadata row mean the metadata row was removed behind our back: integrity
   * error, not "not found" (catalogue STO-05).
   */
  #loadState(sealer: RecordSealer, id: Buffer): SecretState | null {
    const blob = this.#st.getMeta.get(id) as Buffer | undefined;
    if (blob) return sealer.openMeta(id, blob);
    if (this.#st.hasVersions.get(id) !== undefined) throw new StoreError('store_integrity');
    return null;
  }

  // --- system records -------------------------------------------------------------------

  async getSystem(key: string): Promise<Uint8Array | null> {
    return this.#read(() => {
      const v = this.#st.getSystem.get(key) as Buffer | undefined;
      return v ? new Uint8Array(v) : null;
    });
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    const copy = Buffer.from(value);
    return this.#write(() => this.#st.putSystemIfAbsent.run(key, copy).changes === 1);
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    const copy = Buffer.from(value);
    await this.#write(() => {
      this.#st.putSystem.run(key, copy);
    });
  }

  // --- key ----------------------------------------------------------------------------

  /**
   * Installs the keys. The store keeps its own check record (an envelope under the
   * storage key, written on the first unlock): a root key that cannot open it is refused
   * with `store_wrong_key` instead of every path silently reading as "not found"
   * (HMAC ids differ under another key). Nexus's key-check record (D6) is a separate,
   * earlier check.
   */
  async unlock(root: RootKey): Promise<void> {
    this.#checkOpen();
    if (this.#sealer) throw new StoreError('store_already_unlocked');
    const sealer = new RecordSealer(root);
    try {
      let rec = await this.getSystem(STORE_CHECK_KEY);
      if (!rec) {
        await this.putSystemIfAbsent(STORE_CHECK_KEY, sealer.makeStoreCheck());
        rec = await this.getSystem(STORE_CHECK_KEY);
      }
      if (!rec || !sealer.checkStoreCheck(rec)) throw new StoreError('store_wrong_key');
    } catch (e) {
      sealer.destroy();
      throw e;
    }
    if (this.#sealer) {
      sealer.destroy();
      throw new StoreError('store_already_unlocked');
    }
    this.#sealer = sealer;
  }

  isUnlocked(): boolean {
    return this.#sealer !== null;
  }

  // --- secrets --------------------------------------------------------------------------

  async putSecret(p: string, values: Record<string, string>, opts: PutSecretOptions = {}): Promise<{ version: number }> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const o: PutSecretOptions = { ...opts };
    const vals = copyStringMap(values); // the caller may mutate its object before the flush
    return this.#write(() => {
      const before = this.#loadState(sealer, id);
      const r = applyPut(before, o, this.#opts.defaultMaxVersions, this.#opts.now());
      const meta = sealer.sealMeta(id, r.state);
      if (before) this.#st.updateMeta.run(meta, id);
      else this.#st.insertSecret.run(id, sealer.sealPath(id, p), meta);
      this.#st.putValue.run(id, r.version, sealer.sealValues(id, r.version, vals));
      for (const v of r.pruned) this.#st.deleteValue.run(id, v);
      return { version: r.version };
    });
  }

  async getSecret(p: string, version?: number): Promise<{ version: number; values: Record<string, string> } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const asked = version !== undefined && Number.isSafeInteger(version) && version > 0 ? version : 0;
    return this.#read(() => {
      const row = this.#st.getForRead.get({ id, v: asked }) as [Buffer, number | null, Buffer | null] | undefined;
      if (row === undefined) {
        // Version rows without their metadata row: integrity error, not "not found" (STO-05).
        if (this.#st.hasVersions.get(id) !== undefined) throw new StoreError('store_integrity');
        return null;
      }
      const v = resolveReadVersion(sealer.openMeta(id, row[0]), version);
      if (v === null) return null;
      // Both records are opened (and so authenticated) on every read; the value's AAD names
      // its version, so a row of another version could not pass for this one.
      const blob = row[1] === v ? row[2] : this.#st.getValue.get(id, v) as Buffer | undefined;
      if (!blob) throw new StoreError('store_integrity'); // metadata names a version whose row is gone (STO-05)
      return { version: v, values: sealer.openValues(id, v, blob) };
    });
  }

  async deleteSecret(p: string, versions: number[]): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const list = [...versions];
    return this.#write(() => {
      const before = this.#loadState(sealer, id);
      if (!before) return false;
      const r = applyDelete(before, list, this.#opts.now());
      if (r.changed.length > 0) this.#st.updateMeta.run(sealer.sealMeta(id, r.state), id);
      return true;
    });
  }

  async undeleteSecret(p: string, versions: number[]): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const list = [...versions];
    return this.#write(() => {
      const before = this.#loadState(sealer, id);
      if (!before) return false;
      const r = applyUndelete(before, list, this.#opts.now());
      if (r.changed.length === 0) return false;
      this.#st.updateMeta.run(sealer.sealMeta(id, r.state), id);
      return true;
    });
  }

  async destroySecret(p: string, versions: number[]): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const list = [...versions];
    return this.#write(() => {
      const before = this.#loadState(sealer, id);
      if (!before) return false;
      const r = applyDestroy(before, list, this.#opts.now());
      if (r.changed.length > 0) {
        for (const v of r.changed) this.#st.deleteValue.run(id, v);
        this.#st.updateMeta.run(sealer.sealMeta(id, r.state), id);
      }
      return true;
    });
  }

  async getSecretMetadata(p: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    return this.#read(() => {
      const s = this.#loadState(sealer, id);
      return s ? toMetadata(s) : null;
    });
  }

  async listSecretPaths(): Promise<string[]> {
    const sealer = this.#sealerOrThrow();
    const rows = this.#read(() => this.#st.listSecrets.all() as { id: Buffer; path: Buffer }[]);
    const out: string[] = [];
    for (let i = 0; i < rows.length; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
      const r = rows[i]!;
      out.push(sealer.openPath(r.id, r.path));
    }
    return out.sort(compareCodeUnits);
  }

  // --- policies -------------------------------------------------------------------------

  async putPolicy(p: PolicyInput): Promise<PolicyRecord> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(p.name);
    const input: PolicyInput = { name: p.name, spiffeIdPattern: p.spiffeIdPattern, pathPattern: p.pathPattern, permissions: [...p.permissions] };
    return this.#write(() => {
      const now = this.#opts.now();
      const blob = this.#st.getPolicy.get(id) as Buffer | undefined;
      let createdAt = now;
      if (blob) {
        // An unreadable old row is overwritten rather than blocking the upsert.
        try {
          const old = sealer.openPolicyBody(id, blob);
          if (old.name === input.name) createdAt = old.createdAt;
        } catch {
          this.#opts.logger?.error({ err: 'store_integrity' }, 'policy row failed its integrity check; replacing it');
        }
      }
      const rec: PolicyRecord = { ...input, createdAt, updatedAt: now };
      this.#st.putPolicy.run(id, sealer.sealPolicyBody(id, rec));
      this.#st.bumpGeneration.run();
      return rec;
    });
  }

  async getPolicy(name: string): Promise<PolicyRecord | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(name);
    return this.#read(() => {
      const blob = this.#st.getPolicy.get(id) as Buffer | undefined;
      if (!blob) return null;
      const rec = sealer.openPolicyBody(id, blob);
      if (rec.name !== name) throw new StoreError('store_integrity');
      return rec;
    });
  }

  async deletePolicy(name: string): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(name);
    return this.#write(() => {
      const gone = this.#st.deletePolicy.run(id).changes === 1;
      if (gone) this.#st.bumpGeneration.run();
      return gone;
    });
  }

  /**
   * Every readable policy, sorted by name. A row that fails its integrity check is left
   * out and logged as an alarm (catalogue STO-06: a tampered policy never widens access).
   */
  async listPolicies(): Promise<PolicyRecord[]> {
    const sealer = this.#sealerOrThrow();
    const rows = this.#read(() => this.#st.listPolicies.all() as { id: Buffer; body: Buffer }[]);
    const out: PolicyRecord[] = [];
    let bad = 0;
    for (let i = 0; i < rows.length; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
      const r = rows[i]!;
      try {
        const rec = sealer.openPolicyBody(r.id, r.body);
        if (!sealer.policyId(rec.name).equals(r.id)) throw new StoreError('store_integrity');
        out.push(rec);
      } catch {
        bad++;
      }
    }
    if (bad > 0) this.#opts.logger?.error({ err: 'store_integrity', count: bad }, 'ignored policy rows that failed their integrity check');
    return out.sort((a, b) => compareCodeUnits(a.name, b.name));
  }

  async policyGeneration(): Promise<number> {
    return this.#read(() => Number(this.#st.getGeneration.get()));
  }

  /** Write transactions run and writes executed so far (group-commit observability). */
  stats(): { transactions: number; writes: number } {
    return { ...this.#stats };
  }

  // --- lifecycle ----------------------------------------------------------------------

  /** Waits for queued writes to commit, then closes the file and wipes the keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    if (this.#queue.length > 0 || this.#scheduled) {
      await new Promise<void>((r) => this.#drained.push(r));
    }
    this.#closed = true;
    this.#sealer?.destroy();
    this.#sealer = null;
    this.#db.close();
  }
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  return new SqliteStore(opts);
}
