/**
 * At-rest guarantees of the sqlite backend on real files (D8/D9):
 * - STO-11 / P1: canary values, paths, custom metadata, policy names/patterns and a
 *   canary clock are written, overwritten, deleted, pruned, destroyed and reopened; then
 *   every file in the data folder (db, -wal, -shm, anything else) is scanned for each
 *   canary raw, UTF-16, hex and base64 (every alignment) → zero hits.
 * - STO-02: two value blobs are swapped between rows with the real `sqlite3` CLI
 *   (installed here; the test says so and falls back to better-sqlite3 on a second
 *   connection when the CLI is absent) → both reads fail with store_integrity.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../src/crypto/index.js';
import { RecordSealer } from '../../src/store/codec.js';
import { Keyring } from '../../src/store/keyring.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { StoreError } from '../../src/store/types.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-atrest-'));
  dirs.push(d);
  return d;
}

/** Every byte pattern under which `s` could appear in a file. */
function encodings(s: string | Buffer): Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const out: Buffer[] = [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('hex').toUpperCase())];
  if (typeof s === 'string') out.push(Buffer.from(s, 'utf16le'));
  // base64 of the canary inside a larger buffer depends on its offset mod 3: take the
  // stable middle part for each of the three alignments (standard and URL-safe).
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.concat([Buffer.alloc(pad, 0x41), b]).toString('base64');
    const start = Math.ceil((pad * 4) / 3) + 1;
    const core = enc.slice(start, enc.length - 4);
    if (core.length >= 8) {
      out.push(Buffer.from(core));
      out.push(Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')));
    }
  }
  return out;
}

function scan(dir: string, canaries: Map<string, Buffer[]>): string[] {
  const hits: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const data = fs.readFileSync(path.join(dir, name));
    for (const [label, pats] of canaries) {
      for (const p of pats) if (data.includes(p)) hits.push(`${name}: ${label}`);
    }
  }
  return hits;
}

function int64(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(8);
  if (le) b.writeBigInt64LE(BigInt(n)); else b.writeBigInt64BE(BigInt(n));
  return b;
}

function double(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(8);
  if (le) b.writeDoubleLE(n); else b.writeDoubleBE(n);
  return b;
}

test('STO-11 / P1: no value, path, metadata, policy or timestamp canary in db, -wal or -shm', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'spike.db');
  const tag = randomBytes(6).toString('hex');
  // A distinctive clock: 2031-07-19T12:34:56.789Z, advancing 1 ms per reading.
  const T0 = Date.UTC(2031, 6, 19, 12, 34, 56, 789);
  let t = T0;
  const now = (): Date => new Date(t++);
  const root = RootKey.generate();
  const canaries = new Map<string, Buffer[]>();
  const add = (label: string, s: string | Buffer): void => { canaries.set(label, [...(canaries.get(label) ?? []), ...encodings(s)]); };
  const vals = Array.from({ length: 8 }, (_, i) => `VALCANARY${tag}${i}`);
  const paths = Array.from({ length: 8 }, (_, i) => `pathcanary${tag}/db${i}/creds`);
  vals.forEach((v, i) => add(`value ${i}`, v));
  paths.forEach((p, i) => add(`path ${i}`, p));
  paths.forEach((p, i) => add(`path segment ${i}`, `pathcanary${tag}/db${i}`));
  add('value key name', `keycanary${tag}`);
  add('custom metadata', `cmcanary${tag}`);
  add('policy name', `polcanary${tag}`);
  add('policy pattern', `patcanary${tag}`);
  add('policy spiffe id', `spiffe://idcanary${tag}.example/app`);
  add('iso timestamp', new Date(T0).toISOString().slice(0, 16));
  for (let d = 0; d < 400; d += 1) {
    // every clock reading the test can have produced, in the usual binary and text forms
    const ms = T0 + d;
    canaries.set(`timestamp ${d}`, [Buffer.from(String(ms)), int64(ms, false), int64(ms, true), double(ms, false), double(ms, true)]);
  }
  canaries.set('timestamp seconds', [Buffer.from(String(Math.floor(T0 / 1000)))]);

  let store = new SqliteStore({ file, now, defaultMaxVersions: 3 });
  await store.unlock(root);
  for (let round = 0; round < 5; round++) {
    await Promise.all(paths.map((p, i) => store.putSecret(p, { [`keycanary${tag}`]: vals[(i + round) % vals.length]!, pw: vals[i]! },
      round === 0 ? { customMetadata: { owner: `cmcanary${tag}` } } : {})));
  }
  await store.deleteSecret(paths[0]!, []);
  await store.deleteSecret(paths[1]!, [3, 4]);
  await store.undeleteSecret(paths[1]!, [4]);
  await store.destroySecret(paths[2]!, []);
  await store.putPolicy({ name: `polcanary${tag}`, spiffeIdPattern: `^spiffe://idcanary${tag}.example/app$`, pathPattern: `patcanary${tag}/.*`, permissions: ['read'] });
  await store.putPolicy({ name: `polcanary${tag}-2`, spiffeIdPattern: 'x', pathPattern: 'y', permissions: ['list'] });
  await store.deletePolicy(`polcanary${tag}-2`);

  // While open: db, -wal and -shm all exist.
  assert.ok(fs.existsSync(`${file}-wal`) && fs.existsSync(`${file}-shm`));
  assert.ok(t - T0 < 400, 'canary clock range covers every reading');
  let hits = scan(dir, canaries);
  assert.deepEqual(hits, [], `plaintext found while open: ${hits.slice(0, 5).join('; ')}`);

  // Reopen, more churn (pruning of reopened data), checkpoint, close, scan again.
  await store.close();
  store = new SqliteStore({ file, now, defaultMaxVersions: 3 });
  await store.unlock(root);
  for (const p of paths) await store.putSecret(p, { pw: vals[0]! });
  const got = await store.getSecret(paths[3]!);
  assert.equal(got?.values['pw'], vals[0], 'sanity: the data is really there');
  assert.deepEqual((await store.listSecretPaths()).sort(), [...paths].sort());
  hits = scan(dir, canaries);
  assert.deepEqual(hits, [], `plaintext found after reopen: ${hits.slice(0, 5).join('; ')}`);
  await store.close();
  const d = new Database(file);
  d.exec('VACUUM');
  d.close();
  hits = scan(dir, canaries);
  assert.deepEqual(hits, [], `plaintext found after close + VACUUM: ${hits.slice(0, 5).join('; ')}`);

  // The scanner itself must be able to find a canary (a test that cannot fail is a defect).
  fs.writeFileSync(path.join(dir, 'control.bin'), Buffer.concat([Buffer.from('xx'), Buffer.from(Buffer.from(vals[5]!).toString('base64'))]));
  assert.ok(scan(dir, canaries).some((h) => h.startsWith('control.bin')), 'scanner self-check');
  root.destroy();
});

const hasSqliteCli = spawnSync('sqlite3', ['-version']).status === 0;

test(`STO-02: two value blobs swapped between rows with ${hasSqliteCli ? 'the sqlite3 CLI' : 'better-sqlite3 (sqlite3 CLI absent)'} → both reads fail with store_integrity`, async () => {
  const dir = tempDir();
  const file = path.join(dir, 'spike.db');
  const root = RootKey.generate();
  let store = new SqliteStore({ file });
  await store.unlock(root);
  await store.putSecret('secrets/db/alpha', { password: 'alpha-secret' });
  await store.putSecret('secrets/db/beta', { password: 'beta-secret' });
  await store.putSecret('secrets/db/gamma', { password: 'gamma-secret' });
  await store.close();

  const sealer = new RecordSealer(Keyring.derive(root));
  const a = sealer.secretId('secrets/db/alpha').toString('hex');
  const b = sealer.secretId('secrets/db/beta').toString('hex');
  sealer.destroy();
  const blobs = (): Map<string, string> => {
    const d = new Database(file, { readonly: true });
    const rows = d.prepare('SELECT lower(hex(id)) AS id, hex(value) AS value FROM secret_versions').all() as { id: string; value: string }[];
    d.close();
    return new Map(rows.map((r) => [r.id, r.value]));
  };
  const before = blobs();
  const sql = `BEGIN;
CREATE TEMP TABLE swap AS SELECT id, value FROM secret_versions WHERE id IN (X'${a}', X'${b}') AND version = 1;
UPDATE secret_versions SET value = (SELECT s.value FROM swap s WHERE s.id <> secret_versions.id)
  WHERE id IN (X'${a}', X'${b}') AND version = 1;
COMMIT;
SELECT changes();`;
  if (hasSqliteCli) {
    const r = spawnSync('sqlite3', [file], { input: sql, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  } else {
    const d = new Database(file);
    d.exec(sql.replace('SELECT changes();', ''));
    d.close();
  }
  // The swap really happened: each row now holds the other's blob.
  const afterSwap = blobs();
  assert.equal(afterSwap.get(a), before.get(b));
  assert.equal(afterSwap.get(b), before.get(a));
  assert.notEqual(before.get(a), before.get(b));

  store = new SqliteStore({ file });
  await store.unlock(root);
  for (const p of ['secrets/db/alpha', 'secrets/db/beta']) {
    await assert.rejects(store.getSecret(p), (e: unknown) => e instanceof StoreError && e.code === 'store_integrity', p);
    await assert.rejects(store.getSecret(p, 1), (e: unknown) => e instanceof StoreError && e.code === 'store_integrity', p);
  }
  assert.equal((await store.getSecret('secrets/db/gamma'))?.values['password'], 'gamma-secret');
  // Metadata of the swapped paths is untouched and still opens.
  assert.equal((await store.getSecretMetadata('secrets/db/alpha'))?.metadata.currentVersion, 1);
  await store.close();
  root.destroy();
});
