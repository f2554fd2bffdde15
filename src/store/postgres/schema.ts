/**
 * PostgreSQL schema of the `postgres` backend: versioned migrations that are safe when
 * several Nexus instances start at once, and a check that the live schema is exactly what
 * the code expects (fail closed on drift, like ../sqlite/schema.ts).
 *
 * All tables carry a `spike_` prefix and live in the connection's current schema, so the
 * backend can share an operator's existing database. `spike_schema` is a one-row table
 * holding the schema version (the role `PRAGMA user_version` plays for SQLite).
 *
 * Concurrency: `migrate` runs in ONE transaction that first takes a transaction-scoped
 * advisory lock (`pg_advisory_xact_lock`). A second instance blocks on the lock, then sees
 * the version the first committed and has nothing left to do. DDL is transactional in
 * PostgreSQL, so a crash halfway leaves the previous version intact, and the lock is
 * released by the server at commit, rollback or disconnect — it can never be left behind.
 *
 * Nothing sensitive is in clear (D9): ids are HMACs, every other secret/policy column is
 * an AEAD envelope (../codec.ts). Version numbers and the policy generation counter are the
 * only plain integers; `spike_system` holds public records (commitments, key-check envelope).
 */
import type pg from 'pg';
import { StoreError } from '../types.js';

/** Advisory lock key for schema migrations: "SPKTMIGR" as a signed 64-bit integer. */
const MIGRATION_LOCK_KEY = '6003381128730855250';
/** Advisory lock key held while the key-check records are read and written: "SPKTKEYS". */
export const KEY_RECORDS_LOCK_KEY = '6003381128697043283';

/** Migration N (1-based) brings the schema from version N-1 to N. Append only. */
const PG_MIGRATIONS: readonly string[] = [
  `CREATE TABLE spike_system (
     key   text PRIMARY KEY,
     value bytea NOT NULL
   );
   CREATE TABLE spike_counters (
     name  text PRIMARY KEY,
     value bigint NOT NULL
   );
   INSERT INTO spike_counters (name, value) VALUES ('policy_generation', 0);
   CREATE TABLE spike_secrets (
     id   bytea PRIMARY KEY,
     path bytea NOT NULL,
     meta bytea NOT NULL
   );
   CREATE TABLE spike_secret_versions (
     id      bytea NOT NULL,
     version integer NOT NULL,
     value   bytea NOT NULL,
     PRIMARY KEY (id, version)
   );
   CREATE TABLE spike_policies (
     id   bytea PRIMARY KEY,
     body bytea NOT NULL
   );`,
  // 2: the transaction that created each path (xid8, PostgreSQL ≥ 13), so every instance can
  // read "paths created since my last snapshot" through an index (the path index, issue 18).
  // Rows from before this migration keep NULL; the default also covers older binaries' inserts.
  `ALTER TABLE spike_secrets ADD COLUMN created_tx xid8;
   ALTER TABLE spike_secrets ALTER COLUMN created_tx SET DEFAULT pg_current_xact_id();
   CREATE INDEX spike_secrets_created_tx ON spike_secrets (created_tx);`,
  // 3: the rollback anchor's recent records by counter (../anchor.ts), written with each one,
  // so an instance can tell whether the database's history still holds the record it saw.
  `CREATE TABLE spike_anchor_history (
     counter bigint PRIMARY KEY,
     record  bytea NOT NULL
   );`,
];

/** Oldest server the schema runs on (`xid8`, `pg_current_xact_id`, `pg_snapshot`: 13). */
const MIN_SERVER_VERSION_NUM = 130000;

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length;

/** Expected columns per table at PG_SCHEMA_VERSION: name → `information_schema` data type. */
const EXPECTED: Record<string, Record<string, string>> = {
  spike_schema: { singleton: 'boolean', version: 'integer' },
  spike_system: { key: 'text', value: 'bytea' },
  spike_counters: { name: 'text', value: 'bigint' },
  spike_secrets: { id: 'bytea', path: 'bytea', meta: 'bytea', created_tx: 'xid8' },
  spike_secret_versions: { id: 'bytea', version: 'integer', value: 'bytea' },
  spike_policies: { id: 'bytea', body: 'bytea' },
  spike_anchor_history: { counter: 'bigint', record: 'bytea' },
};

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS spike_schema (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version   integer NOT NULL
)`;

/**
 * Brings the schema to PG_SCHEMA_VERSION under the migration advisory lock, then checks
 * it. Throws StoreError('store_schema_too_new' | 'store_schema_invalid'); driver errors
 * propagate (the caller maps them).
 */
export async function migratePostgres(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await client.query(VERSION_TABLE);
    const r = await client.query<{ version: number }>('SELECT version FROM spike_schema');
    let current = 0;
    if (r.rows.length === 0) {
      // Our version table is new; tables of ours without it mean someone else's schema.
      const clash = await client.query(
        `SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
        [Object.keys(EXPECTED).filter((t) => t !== 'spike_schema')],
      );
      if (clash.rows.length > 0) throw new StoreError('store_schema_invalid');
      await client.query('INSERT INTO spike_schema (singleton, version) VALUES (true, 0)');
    } else {
      current = Number(r.rows[0]!.version);
    }
    if (!Number.isInteger(current) || current < 0) throw new StoreError('store_schema_invalid');
    if (current > PG_SCHEMA_VERSION) throw new StoreError('store_schema_too_new');
    const server = await client.query<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`);
    if (Number(server.rows[0]?.v) < MIN_SERVER_VERSION_NUM) throw new StoreError('store_unsupported');
    for (let v = current; v < PG_SCHEMA_VERSION; v++) {
      await client.query(PG_MIGRATIONS[v]!);
      await client.query('UPDATE spike_schema SET version = $1', [v + 1]);
    }
    await validatePostgres(client);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Exactly the expected tables and columns (types and nothing extra), else store_schema_invalid. */
async function validatePostgres(client: pg.ClientBase): Promise<void> {
  const r = await client.query<{ table_name: string; column_name: string; data_type: string }>(
    `SELECT table_name, column_name, data_type FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
    [Object.keys(EXPECTED)],
  );
  const seen = new Map<string, Map<string, string>>();
  for (const row of r.rows) {
    const cols = seen.get(row.table_name) ?? new Map<string, string>();
    cols.set(row.column_name, row.data_type);
    seen.set(row.table_name, cols);
  }
  for (const [table, cols] of Object.entries(EXPECTED)) {
    const live = seen.get(table);
    if (!live || live.size !== Object.keys(cols).length) throw new StoreError('store_schema_invalid');
    for (const [name, type] of Object.entries(cols)) {
      if (live.get(name) !== type) throw new StoreError('store_schema_invalid');
    }
  }
  const gen = await client.query(`SELECT value FROM spike_counters WHERE name = 'policy_generation'`);
  if (gen.rows.length !== 1) throw new StoreError('store_schema_invalid');
  const ver = await client.query('SELECT count(*)::int AS n FROM spike_schema');
  if ((ver.rows[0] as { n: number } | undefined)?.n !== 1) throw new StoreError('store_schema_invalid');
}
