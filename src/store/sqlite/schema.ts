/**
 * SQLite schema of the `sqlite` backend: versioned migrations, identification of our
 * files, and a check that the live schema is exactly what the code expects (fail closed
 * on drift, STO-08).
 *
 * The file is marked with `PRAGMA application_id` = 0x53504b54 ("SPKT") and carries its
 * schema version in `PRAGMA user_version`. A schema newer than the code → refuse
 * (`store_schema_too_new`); older → apply the missing migrations in one transaction.
 *
 * Nothing sensitive is in clear (D9): ids are HMACs, every other secret/policy column is
 * an AEAD envelope (../codec.ts). Version numbers and the policy generation counter are the
 * only plain integers. `system` holds public records (commitments, key-check envelope).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { StoreError } from '../types.js';

const APPLICATION_ID = 0x53504b54;

/** Logs every new secret row into `path_log` (migration 2). */
const PATH_LOG_TRIGGER = 'secrets_path_log';

/** Migration N (1-based) brings the schema from version N-1 to N. Append only. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE system (
     key   TEXT PRIMARY KEY,
     value BLOB NOT NULL
   ) STRICT;
   CREATE TABLE counters (
     name  TEXT PRIMARY KEY,
     value INTEGER NOT NULL
   ) STRICT;
   INSERT INTO counters (name, value) VALUES ('policy_generation', 0);
   CREATE TABLE secrets (
     id   BLOB PRIMARY KEY,
     path BLOB NOT NULL,
     meta BLOB NOT NULL
   ) STRICT, WITHOUT ROWID;
   CREATE TABLE secret_versions (
     id      BLOB NOT NULL,
     version INTEGER NOT NULL,
     value   BLOB NOT NULL,
     PRIMARY KEY (id, version)
   ) STRICT, WITHOUT ROWID;
   CREATE TABLE policies (
     id   BLOB PRIMARY KEY,
     body BLOB NOT NULL
   ) STRICT, WITHOUT ROWID;`,
  // 2: the order in which secret rows were created (rows are never deleted), so another
  // process (a Nexus worker) brings its path index up to date by reading what is new instead of
  // rebuilding it. Kept by a trigger, so every writer of the file logs its inserts (also a
  // process of the previous version still running). A secret created before this migration has
  // no entry; index builds read the secrets table itself, so it is listed all the same.
  `CREATE TABLE path_log (
     seq INTEGER PRIMARY KEY,
     id  BLOB NOT NULL
   ) STRICT;
   CREATE TRIGGER ${PATH_LOG_TRIGGER} AFTER INSERT ON secrets
   BEGIN
     INSERT INTO path_log (id) VALUES (NEW.id);
   END;`,
  // 3: the rollback anchor's recent records (counter and nonce) in chunks keyed by their first
  // counter (../anchor.ts, ./anchor-history.ts), so a process can tell whether the store's
  // history still holds the record it saw.
  `CREATE TABLE anchor_history (
     first   INTEGER PRIMARY KEY,
     entries BLOB NOT NULL
   ) STRICT;`,
];

const SCHEMA_VERSION = MIGRATIONS.length;

/** Expected columns per table at SCHEMA_VERSION: name → declared type. */
const EXPECTED: Record<string, Record<string, string>> = {
  system: { key: 'TEXT', value: 'BLOB' },
  counters: { name: 'TEXT', value: 'INTEGER' },
  secrets: { id: 'BLOB', path: 'BLOB', meta: 'BLOB' },
  secret_versions: { id: 'BLOB', version: 'INTEGER', value: 'BLOB' },
  policies: { id: 'BLOB', body: 'BLOB' },
  path_log: { seq: 'INTEGER', id: 'BLOB' },
  anchor_history: { first: 'INTEGER', entries: 'BLOB' },
};

function pragmaNumber(db: BetterSqlite3.Database, name: string): number {
  const v = db.pragma(name, { simple: true });
  return typeof v === 'number' ? v : Number(v);
}

/** Initialises a brand-new, empty database file (used before it is moved into place). */
export function initialiseFresh(db: BetterSqlite3.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`application_id = ${APPLICATION_ID}`);
  migrate(db);
}

/**
 * Checks identity and version, applies pending migrations, then validates the tables.
 * Throws StoreError('store_corrupt' | 'store_schema_too_new' | 'store_schema_invalid').
 */
export function migrate(db: BetterSqlite3.Database): void {
  const appId = pragmaNumber(db, 'application_id');
  if (appId !== APPLICATION_ID) throw new StoreError('store_corrupt');
  const current = pragmaNumber(db, 'user_version');
  if (!Number.isInteger(current) || current < 0) throw new StoreError('store_schema_invalid');
  if (current > SCHEMA_VERSION) throw new StoreError('store_schema_too_new');
  if (current < SCHEMA_VERSION) {
    db.exec('BEGIN IMMEDIATE');
    try {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      const again = pragmaNumber(db, 'user_version');
      for (let v = again; v < SCHEMA_VERSION; v++) {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      }
      db.exec('COMMIT');
    } catch (e) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }
  validate(db);
}

/**
 * Read-only identity check of a file (used on backups): ours, not newer than this code, and
 * at the current version with exactly the expected tables (an older file is left for
 * {@link migrate} to bring up when Nexus opens it). Never writes. Throws like `migrate`.
 */
export function checkSchema(db: BetterSqlite3.Database): void {
  if (pragmaNumber(db, 'application_id') !== APPLICATION_ID) throw new StoreError('store_corrupt');
  const current = pragmaNumber(db, 'user_version');
  if (current > SCHEMA_VERSION) throw new StoreError('store_schema_too_new');
  if (!Number.isInteger(current) || current < 1) throw new StoreError('store_schema_invalid');
  if (current === SCHEMA_VERSION) validate(db);
}

/** Exactly the expected tables and columns (types and nothing extra), else store_schema_invalid. */
function validate(db: BetterSqlite3.Database): void {
  const tables = db
    .prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
    .pluck()
    .all() as string[];
  const expectedNames = Object.keys(EXPECTED).sort();
  if (tables.sort().join(',') !== expectedNames.join(',')) throw new StoreError('store_schema_invalid');
  for (const [table, cols] of Object.entries(EXPECTED)) {
    const info = db.prepare(`SELECT name, type FROM pragma_table_info(?)`).all(table) as { name: string; type: string }[];
    if (info.length !== Object.keys(cols).length) throw new StoreError('store_schema_invalid');
    for (const c of info) {
      if (cols[c.name] !== c.type.toUpperCase()) throw new StoreError('store_schema_invalid');
    }
  }
  // Without its trigger the path log misses new secrets, and other workers' listings with them.
  const trigger = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND name = ? AND tbl_name = 'secrets'`).pluck().get(PATH_LOG_TRIGGER);
  if (trigger !== 1) throw new StoreError('store_schema_invalid');
  const gen = db.prepare(`SELECT value FROM counters WHERE name = 'policy_generation'`).pluck().get();
  if (typeof gen !== 'number' && typeof gen !== 'bigint') throw new StoreError('store_schema_invalid');
}
