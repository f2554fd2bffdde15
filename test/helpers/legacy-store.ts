/**
 * A database as the code before the single key check wrote it (commit c05379b): rows
 * dumped from a real sqlite file that that code built through its own `adoptKey` (sharing
 * record, `kcv` record, and the stores' former `store/key-check` record), then two
 * versions of `app/db` (version 1 deleted, custom metadata on version 2) and one policy.
 * Blobs are hex. The root key is 32 bytes of 0x2a — a test key, nothing else.
 *
 * Both persistent backends hold the same blobs, so the rows load into either schema;
 * tests prove such a database still opens with its root key after the change, and that a
 * wrong key is still refused with the same codes.
 */
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import { RootKey, type Share } from '../../src/crypto/index.js';
import { SqliteStore } from '../../src/store/index.js';

export const LEGACY_ROOT_HEX = '2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a';

/** Two shares of the recorded sharing (threshold 2 of 3), enough to adopt the key. */
export const LEGACY_BASIS_HEX: readonly { id: number; value: string }[] = [
  { id: 1, value: '355a7fa4c9ef13385d82a7ccf2163b6085aacff5193e6388add2f81c41668bb0' },
  { id: 2, value: '408ad51f69b3fc4690db256fba024c96e12b75c008529ce7317bc60e58a2ed36' },
];

export const LEGACY_ROWS = {
  system: [
    { key: 'sharing', value: '7b2276223a312c2265706f6368223a312c227468726573686f6c64223a322c22736861726573223a332c22636f6d6d69746d656e7473223a224151494d6b42314350494d637146346e787a776d4f364579636875353136684d54774f4173715a31623959424d774b65315075742b4a75787a547939304463337872566573685a6e37305336756966636f4e71716853667877413d3d227d' },
    { key: 'kcv', value: '01000000011bf915eedcf776af4d50a265220130821f0d1e29cfd59847d68951ff98bb49e9cc254a5dd32e10d815bb2482b4a39d1154' },
    { key: 'store/key-check', value: '010000000164e707029c6bba41241105e29d50fc949bee6d03dacd30060a83528806c33307044a88b0ba2780c934483bb976742248d2ad9cde' },
  ],
  secrets: [
    { id: 'fe13ef427230f359be65598f30d02d8bf925fb7ed54e21e49d76fd54f50c2ef3', path: '01000000017c6ddee8bcec872432824c1cad0e6ec85afe7d9af156cb70ebc318c4468c83691f32', meta: '0100000001129a5b06f75845fccb216a917c7f0f5d9f9b4ddd4b089c086c1bdac59b3a6cb926f4a843b4a5c4bf04910bf19c1f9528c49701f22ebf1fe3129f67c536ccad16e1964c90e8e26986d9f20569a5390a7fae82dcc6acfdd4c36e30644a6c1579f730fdd77e12f7b9877eaf97dda8de5343bfa5b8bac807d0278ac81e6190aaa5d4114a867b4e9f6c371a933c2159d298e0217028335a16a96f81cc154fc2c70c2b223c9ab97a25d60da6559e0321441227a4a4ca2a814b83b48bb9' },
  ],
  secret_versions: [
    { id: 'fe13ef427230f359be65598f30d02d8bf925fb7ed54e21e49d76fd54f50c2ef3', version: 1, value: '010000000146a6f7b78bdffeae9b9cb994f36c96a16ed7117849aa6dbea2944e8f75ba3f14e9abfa4cc7b933cc0691721645b47e460b08b797c707a6b62deda669d0ded240' },
    { id: 'fe13ef427230f359be65598f30d02d8bf925fb7ed54e21e49d76fd54f50c2ef3', version: 2, value: '010000000120912da24ef51a9407b9bbafbb2893103d8b53632b0b167da2d7f06772fb6cb333beb33cba5b38291e37350fb26e9d50add3fe7d83f7dcfdd69e8ed6fcead73f26' },
  ],
  policies: [
    { id: 'b5bbb7ff0a81b221694aff4b55664f17ef01ccbe83dbe8254f9bb6e4bea02d85', body: '0100000001c7f16e63724c6379818f837420d1e44cf50c3fd5fc18649b0ec8c35e2cf109807e1fe9323456f6bda40b3db9e2d4154a2073c43df8dd5a09733c5683a09611c0f8f200aee03c3524de0eaa3b8f44dd6804404b3585f96d04e460c4d06e92cd48bb5fade5fec5a2db812bf9800c3d5f05d8afd54fc8713c481c14fc8801252a1c4e0bd7d6597e4816228e03d5a64215b3d7358aa336a86940' },
  ],
  policyGeneration: 1,
} as const;

export function legacyRoot(): RootKey {
  return RootKey.fromBytes(Buffer.from(LEGACY_ROOT_HEX, 'hex'));
}

export function legacyBasis(): Share[] {
  return LEGACY_BASIS_HEX.map((s) => ({ id: s.id, value: Uint8Array.from(Buffer.from(s.value, 'hex')) }));
}

/** The system records to load, minus `omit` (e.g. a database that was never adopted through Nexus). */
function systemRows(omit: readonly string[]): { key: string; value: Buffer }[] {
  return LEGACY_ROWS.system.filter((r) => !omit.includes(r.key)).map((r) => ({ key: r.key, value: Buffer.from(r.value, 'hex') }));
}

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** Loads the rows into a sqlite database that has the current schema and no rows yet. */
export function loadLegacySqlite(db: BetterSqlite3.Database, omitSystem: readonly string[] = []): void {
  db.transaction(() => {
    for (const r of systemRows(omitSystem)) db.prepare('INSERT INTO system (key, value) VALUES (?, ?)').run(r.key, r.value);
    for (const r of LEGACY_ROWS.secrets) db.prepare('INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)').run(hex(r.id), hex(r.path), hex(r.meta));
    for (const r of LEGACY_ROWS.secret_versions) {
      db.prepare('INSERT INTO secret_versions (id, version, value) VALUES (?, ?, ?)').run(hex(r.id), r.version, hex(r.value));
    }
    for (const r of LEGACY_ROWS.policies) db.prepare('INSERT INTO policies (id, body) VALUES (?, ?)').run(hex(r.id), hex(r.body));
    db.prepare(`UPDATE counters SET value = ? WHERE name = 'policy_generation'`).run(LEGACY_ROWS.policyGeneration);
  })();
}

/** Creates the sqlite database `file` (current schema) holding the legacy rows. */
export async function writeLegacySqliteFile(file: string, omitSystem: readonly string[] = []): Promise<void> {
  await new SqliteStore({ file }).close();
  const db = new Database(file);
  try {
    loadLegacySqlite(db, omitSystem);
  } finally {
    db.close();
  }
}

/** Loads the rows into a postgres database that has the current schema and no rows yet. */
export async function loadLegacyPostgres(client: pg.ClientBase, omitSystem: readonly string[] = []): Promise<void> {
  await client.query('BEGIN');
  for (const r of systemRows(omitSystem)) await client.query('INSERT INTO spike_system (key, value) VALUES ($1, $2)', [r.key, r.value]);
  for (const r of LEGACY_ROWS.secrets) await client.query('INSERT INTO spike_secrets (id, path, meta) VALUES ($1, $2, $3)', [hex(r.id), hex(r.path), hex(r.meta)]);
  for (const r of LEGACY_ROWS.secret_versions) {
    await client.query('INSERT INTO spike_secret_versions (id, version, value) VALUES ($1, $2, $3)', [hex(r.id), r.version, hex(r.value)]);
  }
  for (const r of LEGACY_ROWS.policies) await client.query('INSERT INTO spike_policies (id, body) VALUES ($1, $2)', [hex(r.id), hex(r.body)]);
  await client.query(`UPDATE spike_counters SET value = $1 WHERE name = 'policy_generation'`, [LEGACY_ROWS.policyGeneration]);
  await client.query('COMMIT');
}

/** What the legacy database holds, as the store API returns it. */
export const LEGACY_CONTENT = {
  path: 'app/db',
  current: { version: 2, values: { user: 'admin', pass: 'rotated' } },
  customMetadata: { owner: 'ops' },
  policy: { name: 'readers', spiffeIdPattern: '^spiffe://example.org/app$', pathPattern: '^app/.*$', permissions: ['read', 'list'] },
  policyGeneration: 1,
} as const;
