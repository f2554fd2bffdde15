/** The `sqlite` backend's prepared statements (store.ts), in one place. */
import type BetterSqlite3 from 'better-sqlite3';

type StatementName =
  'getSystem'
  | 'putSystemIfAbsent'
  | 'putSystem'
  | 'getMeta'
  | 'insertSecret'
  | 'updateMeta'
  | 'hasVersions'
  | 'getForRead'
  | 'putValue'
  | 'deleteValue'
  | 'getPolicy'
  | 'putPolicy'
  | 'deletePolicy'
  | 'listPolicies'
  | 'getGeneration'
  | 'bumpGeneration'
  | 'stalePaths'
  | 'staleMetas'
  | 'staleValues'
  | 'stalePolicies'
  | 'swapPath'
  | 'swapMeta'
  | 'swapValue'
  | 'swapPolicy';
export type Statements = Record<StatementName, BetterSqlite3.Statement>;

/**
 * A metadata column read against the blob bound in its place (the sealer's remembered one, or
 * NULL): the number 0 when the stored value is a blob equal to it byte for byte, the blob when
 * it differs, NULL when what is stored is not a blob (store.ts reads 0 as "unchanged").
 */
const metaUnlessKnown = (col: string): string => `CASE WHEN ${col} = ? THEN 0 WHEN typeof(${col}) = 'blob' THEN ${col} END`;

/** A secret's metadata column as {@link metaUnlessKnown} (parameters: known meta, id). Also run by the bench's sealed echo. */
export const READ_META_SQL = `SELECT ${metaUnlessKnown('meta')} FROM secrets WHERE id = ?`;

/**
 * A read in one statement (one implicit read transaction instead of two): the metadata
 * column as {@link metaUnlessKnown} plus the value row of the asked version, or of the highest
 * version when none was asked (normally the current one; the core reads again by number when
 * not). Positional parameters (known meta, version, version, id, id): better-sqlite3 binds them
 * ~1.5 µs faster than named ones from an object, on the hottest statement of a GET. Also run
 * by the bench's sealed echo (bench/sealed-echo-store.ts).
 */
export const READ_SECRET_SQL = `SELECT ${metaUnlessKnown('s.meta')}, v.version, v.value FROM secrets s
  LEFT JOIN secret_versions v ON v.id = s.id
   AND v.version = CASE WHEN ? > 0 THEN ? ELSE (SELECT MAX(version) FROM secret_versions WHERE id = ?) END
  WHERE s.id = ?`;

export function prepare(db: BetterSqlite3.Database): Statements {
  return {
    getSystem: db.prepare('SELECT value FROM system WHERE key = ?').pluck(),
    putSystemIfAbsent: db.prepare('INSERT OR IGNORE INTO system (key, value) VALUES (?, ?)'),
    putSystem: db.prepare('INSERT OR REPLACE INTO system (key, value) VALUES (?, ?)'),
    getMeta: db.prepare(READ_META_SQL).pluck(),
    insertSecret: db.prepare('INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)'),
    updateMeta: db.prepare('UPDATE secrets SET meta = ? WHERE id = ?'),
    hasVersions: db.prepare('SELECT 1 FROM secret_versions WHERE id = ? LIMIT 1').pluck(),
    getForRead: db.prepare(READ_SECRET_SQL).raw(),
    putValue: db.prepare('INSERT OR REPLACE INTO secret_versions (id, version, value) VALUES (?, ?, ?)'),
    deleteValue: db.prepare('DELETE FROM secret_versions WHERE id = ? AND version = ?'),
    getPolicy: db.prepare('SELECT body FROM policies WHERE id = ?').pluck(),
    putPolicy: db.prepare('INSERT OR REPLACE INTO policies (id, body) VALUES (?, ?)'),
    deletePolicy: db.prepare('DELETE FROM policies WHERE id = ?'),
    listPolicies: db.prepare('SELECT id, body FROM policies'),
    getGeneration: db.prepare(`SELECT value FROM counters WHERE name = 'policy_generation'`).pluck(),
    bumpGeneration: db.prepare(`UPDATE counters SET value = value + 1 WHERE name = 'policy_generation'`),
    // Re-encryption: blobs whose envelope key id (bytes 2-5) is not the current one, and
    // swaps written only when the cell still holds the bytes read (concurrent writes win).
    stalePaths: db.prepare('SELECT id, path AS blob FROM secrets WHERE substr(path, 2, 4) <> ? LIMIT ?'),
    staleMetas: db.prepare('SELECT id, meta AS blob FROM secrets WHERE substr(meta, 2, 4) <> ? LIMIT ?'),
    staleValues: db.prepare('SELECT id, version, value AS blob FROM secret_versions WHERE substr(value, 2, 4) <> ? LIMIT ?'),
    stalePolicies: db.prepare('SELECT id, body AS blob FROM policies WHERE substr(body, 2, 4) <> ? LIMIT ?'),
    swapPath: db.prepare('UPDATE secrets SET path = ? WHERE id = ? AND path = ?'),
    swapMeta: db.prepare('UPDATE secrets SET meta = ? WHERE id = ? AND meta = ?'),
    swapValue: db.prepare('UPDATE secret_versions SET value = ? WHERE id = ? AND version = ? AND value = ?'),
    swapPolicy: db.prepare('UPDATE policies SET body = ? WHERE id = ? AND body = ?'),
  };
}

/** The 4 envelope header bytes naming key id `id` (uint32 BE), as stored at offset 1 (the stale-blob scans' argument). */
export function keyIdBytes(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(id, 0);
  return b;
}
