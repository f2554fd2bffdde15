/**
 * The `postgres` backend's statements, named so each connection prepares them once. Every
 * read is one statement (one snapshot); the write statements combine what one logical
 * write changes (metadata, new value, pruned values) into one round trip.
 */
import type pg from 'pg';
import { KEY_RECORDS_LOCK_KEY } from './schema.js';

/** NOTIFY channel; the payload is the new policy generation in decimal. */
export const POLICY_CHANNEL = 'spike_policy_changed';

const SQL = {
  getSystem: 'SELECT value FROM spike_system WHERE key = $1',
  getSystems: 'SELECT key, value FROM spike_system WHERE key = ANY ($1::text[])',
  putSystemIfAbsent: 'INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
  putSystem: 'INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
  lockKeyRecords: `SELECT pg_advisory_xact_lock(${KEY_RECORDS_LOCK_KEY}::bigint)`,
  lockMeta: 'SELECT meta FROM spike_secrets WHERE id = $1 FOR UPDATE',
  probe: `SELECT EXISTS (SELECT 1 FROM spike_secrets WHERE id = $1) AS present,
                 EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  /** New path: the secret row and its first value in one statement; no row if someone else created it. */
  insertSecret: `WITH s AS (
                   INSERT INTO spike_secrets (id, path, meta) VALUES ($1, $2, $3)
                   ON CONFLICT (id) DO NOTHING RETURNING id)
                 INSERT INTO spike_secret_versions (id, version, value)
                 SELECT id, $4, $5 FROM s
                 ON CONFLICT (id, version) DO UPDATE SET value = EXCLUDED.value`,
  /** Existing path: new metadata, new version, pruned versions gone — one statement. */
  putVersion: `WITH m AS (UPDATE spike_secrets SET meta = $2 WHERE id = $1),
                    d AS (DELETE FROM spike_secret_versions WHERE id = $1 AND version = ANY ($3::int[]))
               INSERT INTO spike_secret_versions (id, version, value) VALUES ($1, $4, $5)
               ON CONFLICT (id, version) DO UPDATE SET value = EXCLUDED.value`,
  updateMeta: 'UPDATE spike_secrets SET meta = $2 WHERE id = $1',
  updateMetaDropVersions: `WITH d AS (DELETE FROM spike_secret_versions WHERE id = $1 AND version = ANY ($3::int[]))
                           UPDATE spike_secrets SET meta = $2 WHERE id = $1`,
  /** Read of one version: metadata, that version's value and the orphan probe share one snapshot. */
  readVersion: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta,
                       (SELECT value FROM spike_secret_versions WHERE id = $1 AND version = $2) AS value,
                       $2::int AS version,
                       EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  /** Read of the current version, guessing it is the newest stored one (true unless the newest was deleted). */
  readNewest: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta, t.value, t.version,
                      t.version IS NOT NULL AS versions
                 FROM (SELECT 1) AS one
                 LEFT JOIN LATERAL (SELECT version, value FROM spike_secret_versions WHERE id = $1
                                     ORDER BY version DESC LIMIT 1) AS t ON true`,
  readMeta: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta,
                    EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  listSecrets: 'SELECT id, path FROM spike_secrets',
  lockGeneration: `SELECT value FROM spike_counters WHERE name = 'policy_generation' FOR UPDATE`,
  bumpGeneration: `WITH g AS (UPDATE spike_counters SET value = value + 1 WHERE name = 'policy_generation' RETURNING value)
                   SELECT value::text AS value, pg_notify('${POLICY_CHANNEL}', value::text) FROM g`,
  getGeneration: `SELECT value::text AS value FROM spike_counters WHERE name = 'policy_generation'`,
  getPolicy: 'SELECT body FROM spike_policies WHERE id = $1',
  putPolicy: 'INSERT INTO spike_policies (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body',
  deletePolicy: 'DELETE FROM spike_policies WHERE id = $1',
  listPolicies: 'SELECT id, body FROM spike_policies',
} as const;

type SqlName = keyof typeof SQL;

/** The named statement `name` with its parameters. */
export function q(name: SqlName, values: unknown[] = []): pg.QueryConfig<unknown[]> {
  return { name: `spike_${name}`, text: SQL[name], values };
}
