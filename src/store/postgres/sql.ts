/**
 * The `postgres` backend's statements, named so each connection prepares them once (and
 * the helpers that read the path index's snapshot rows). Every
 * read is one statement (one snapshot); the write statements combine what one logical
 * write changes (metadata, new value, pruned values) into one round trip.
 */
import type pg from 'pg';
import type { PathRow } from '../path-catalog.js';
import { StoreError } from '../types.js';
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
  /** The path index's mark: read before the first page of a build (path-catalog.ts). */
  currentSnapshot: 'SELECT pg_current_snapshot()::text AS snap',
  /** One page of path records in key order after `$1` (keyset paging; rows are never deleted). */
  listSecretsPage: 'SELECT id, path FROM spike_secrets WHERE id > $1 ORDER BY id LIMIT $2',
  lockGeneration: `SELECT value FROM spike_counters WHERE name = 'policy_generation' FOR UPDATE`,
  bumpGeneration: `WITH g AS (UPDATE spike_counters SET value = value + 1 WHERE name = 'policy_generation' RETURNING value)
                   SELECT value::text AS value, pg_notify('${POLICY_CHANNEL}', value::text) FROM g`,
  getGeneration: `SELECT value::text AS value FROM spike_counters WHERE name = 'policy_generation'`,
  getPolicy: 'SELECT body FROM spike_policies WHERE id = $1',
  putPolicy: 'INSERT INTO spike_policies (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body',
  deletePolicy: 'DELETE FROM spike_policies WHERE id = $1',
  listPolicies: 'SELECT id, body FROM spike_policies',
  /**
   * The rollback anchor, compare-and-swap: replaced by $1 (counter $3) only if it still holds
   * the bytes read ($2), and then also put in the history, which drops what is below $4
   * (./anchor.ts). `n`: 1 when swapped.
   */
  swapAnchor: `WITH s AS (UPDATE spike_system SET value = $1 WHERE key = 'commit_anchor' AND value = $2 RETURNING 1),
                    h AS (INSERT INTO spike_anchor_history (counter, record) SELECT $3::bigint, $1 FROM s
                          ON CONFLICT (counter) DO UPDATE SET record = EXCLUDED.record),
                    d AS (DELETE FROM spike_anchor_history WHERE counter < $4::bigint AND EXISTS (SELECT 1 FROM s))
               SELECT count(*)::int AS n FROM s`,
  /** The first anchor record $1 (counter $2), only if there is none, and in the history. `n`: 1 when written. */
  putAnchorIfAbsent: `WITH s AS (INSERT INTO spike_system (key, value) VALUES ('commit_anchor', $1) ON CONFLICT (key) DO NOTHING RETURNING 1),
                           h AS (INSERT INTO spike_anchor_history (counter, record) SELECT $2::bigint, $1 FROM s
                                 ON CONFLICT (counter) DO UPDATE SET record = EXCLUDED.record)
                      SELECT count(*)::int AS n FROM s`,
  /** The anchor history's records at the counters $1. */
  recordedAnchors: 'SELECT counter::text AS counter, record FROM spike_anchor_history WHERE counter = ANY ($1::bigint[])',
} as const;

type SqlName = keyof typeof SQL;

/**
 * Path records created by transactions the snapshot `$1` did not see, plus this statement's
 * snapshot: exactly the paths committed since `$1` was taken (rows are never deleted). An
 * index range scan from the old snapshot's xmin. Sent unnamed (planned with the value each
 * time), so the planner sees how narrow the range is.
 */
export function pathsSinceQuery(snapshot: string): pg.QueryConfig<unknown[]> {
  return {
    text: `SELECT id, path, NULL::text AS snap FROM spike_secrets
            WHERE created_tx >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(created_tx, $1::pg_snapshot)
           UNION ALL SELECT NULL, NULL, pg_current_snapshot()::text`,
    values: [snapshot],
  };
}

/** The named statement `name` with its parameters. */
export function q(name: SqlName, values: unknown[] = []): pg.QueryConfig<unknown[]> {
  return { name: `spike_${name}`, text: SQL[name], values };
}

/** Runs one statement on a transaction's connection, within the request's deadline (store.ts). */
export type Run = <R extends pg.QueryResultRow = pg.QueryResultRow>(query: pg.QueryConfig<unknown[]> | string) => Promise<pg.QueryResult<R>>;

export type SnapRow = { id: Buffer | null; path: Buffer | null; snap: string | null };

/** The path rows and the one snapshot row of `listSecrets` / `pathsSinceQuery`. */
export function splitSnapshot(all: readonly SnapRow[]): { rows: PathRow[]; mark: string } {
  const rows: PathRow[] = [];
  let mark: string | null = null;
  for (const r of all) {
    if (r.snap !== null) mark = r.snap;
    else if (r.id !== null && r.path !== null) rows.push({ id: r.id, path: r.path });
  }
  if (mark === null) throw new StoreError('store_unavailable');
  return { rows, mark };
}

/** `xmax` of a `pg_snapshot` text (`xmin:xmax:xip,…`). */
export function snapshotXmax(snap: string): bigint {
  const m = /^\d+:(\d+):/.exec(snap);
  if (!m) throw new StoreError('store_integrity');
  return BigInt(m[1] as string);
}
