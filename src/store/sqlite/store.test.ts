// test-process: own
// It sets the process umask across awaits.
/**
 * sqlite-specific behaviour on real files: tampering (STO-01/02/04/05/06), wrong key
 * (STO-09), refusing bad files and schemas (STO-07/08), file modes (STO-10), a writer
 * lock held by the real `sqlite3` CLI (STO-12, skipped when the CLI is absent), and group
 * commit (D12): one transaction per batch, one failing write does not undo the others.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import { RecordSealer } from '../codec.js';
import { Keyring } from '../keyring.js';
import { SqliteStore } from './store.js';
import { StoreError } from '../types.js';

const dirs: string[] = [];
const roots: RootKey[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  for (const r of roots) r.destroy();
});

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sqlite-'));
  dirs.push(dir);
  return path.join(dir, 'spike.db');
}

function newRoot(): RootKey {
  const r = RootKey.generate();
  roots.push(r);
  return r;
}

async function opened(file = tempFile(), root = newRoot(), extra: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}) {
  const store = new SqliteStore({ file, ...extra });
  await store.unlock(root);
  const sealer = new RecordSealer(Keyring.derive(root));
  return { store, file, root, sealer };
}

function isCode(code: string) {
  return (e: unknown): boolean => e instanceof StoreError && e.code === code;
}

/** A second, raw connection playing the attacker with write access to the file. */
function raw(file: string): Database.Database {
  return new Database(file);
}

test('STO-01: one flipped byte in a value or metadata blob → store_integrity for that path only', async () => {
  const { store, file, sealer } = await opened();
  await store.putSecret('a/one', { k: 'v1' });
  await store.putSecret('a/two', { k: 'v2' });
  await store.putSecret('a/three', { k: 'v3' });
  const db = raw(file);
  const flip = (b: Buffer): Buffer => { const c = Buffer.from(b); c[c.length - 20]! ^= 0x01; return c; };
  const v = db.prepare('SELECT value FROM secret_versions WHERE id = ? AND version = 1').pluck().get(sealer.secretId('a/one')) as Buffer;
  db.prepare('UPDATE secret_versions SET value = ? WHERE id = ? AND version = 1').run(flip(v), sealer.secretId('a/one'));
  const m = db.prepare('SELECT meta FROM secrets WHERE id = ?').pluck().get(sealer.secretId('a/three')) as Buffer;
  db.prepare('UPDATE secrets SET meta = ? WHERE id = ?').run(flip(m), sealer.secretId('a/three'));
  db.close();
  await assert.rejects(store.getSecret('a/one'), isCode('store_integrity'));
  await assert.rejects(store.getSecretMetadata('a/three'), isCode('store_integrity'));
  await assert.rejects(store.putSecret('a/three', { k: 'x' }), isCode('store_integrity'));
  assert.deepEqual(Object.entries((await store.getSecret('a/two'))!.values), [['k', 'v2']]);
  await store.close();
});

test('STO-02: swapping blobs between two paths, or two versions of one path, is detected, never returns the other row', async () => {
  const { store, file, sealer } = await opened();
  await store.putSecret('s/x', { k: 'value-of-x' });
  await store.putSecret('s/y', { k: 'value-of-y' });
  await store.putSecret('s/v', { k: 'v1' });
  await store.putSecret('s/v', { k: 'v2' });
  const db = raw(file);
  const [x, y] = [sealer.secretId('s/x'), sealer.secretId('s/y')];
  const get = db.prepare('SELECT value FROM secret_versions WHERE id = ? AND version = ?').pluck();
  const set = db.prepare('UPDATE secret_versions SET value = ? WHERE id = ? AND version = ?');
  const vx = get.get(x, 1) as Buffer;
  const vy = get.get(y, 1) as Buffer;
  set.run(vy, x, 1);
  set.run(vx, y, 1);
  const vid = sealer.secretId('s/v');
  const v1 = get.get(vid, 1) as Buffer;
  const v2 = get.get(vid, 2) as Buffer;
  set.run(v2, vid, 1);
  set.run(v1, vid, 2);
  // Whole-row move: x's metadata and path under y's id.
  const meta = db.prepare('SELECT meta FROM secrets WHERE id = ?').pluck();
  const mx = meta.get(x) as Buffer;
  db.prepare('UPDATE secrets SET meta = ? WHERE id = ?').run(mx, y);
  db.close();
  await assert.rejects(store.getSecret('s/x'), isCode('store_integrity'));
  await assert.rejects(store.getSecret('s/y'), isCode('store_integrity'));
  await assert.rejects(store.getSecret('s/v', 1), isCode('store_integrity'));
  await assert.rejects(store.getSecret('s/v', 2), isCode('store_integrity'));
  await store.close();
});

test('STO-04: clearing or replacing the sealed deletion marker (metadata) → integrity error, version never reappears', async () => {
  const { store, file, sealer } = await opened();
  await store.putSecret('d/a', { k: '1' });
  await store.putSecret('d/a', { k: '2' });
  await store.deleteSecret('d/a', [2]);
  await store.putSecret('d/b', { k: 'b' });
  const db = raw(file);
  const [a, b] = [sealer.secretId('d/a'), sealer.secretId('d/b')];
  // Replace a's metadata (with its deletion mark) by b's, which has no deleted version.
  const mb = db.prepare('SELECT meta FROM secrets WHERE id = ?').pluck().get(b) as Buffer;
  db.prepare('UPDATE secrets SET meta = ? WHERE id = ?').run(mb, a);
  db.close();
  await assert.rejects(store.getSecret('d/a', 2), isCode('store_integrity'));
  await assert.rejects(store.getSecretMetadata('d/a'), isCode('store_integrity'));
  await store.close();
});

test('STO-05: metadata row removed while versions remain, or the current version row removed → integrity error', async () => {
  const { store, file, sealer } = await opened();
  await store.putSecret('m/a', { k: '1' });
  await store.putSecret('m/b', { k: '1' });
  await store.putSecret('m/b', { k: '2' });
  const db = raw(file);
  db.prepare('DELETE FROM secrets WHERE id = ?').run(sealer.secretId('m/a'));
  db.prepare('DELETE FROM secret_versions WHERE id = ? AND version = 2').run(sealer.secretId('m/b'));
  db.close();
  await assert.rejects(store.getSecret('m/a'), isCode('store_integrity'));
  await assert.rejects(store.putSecret('m/a', { k: 'x' }), isCode('store_integrity'));
  await assert.rejects(store.getSecret('m/b'), isCode('store_integrity'));
  assert.deepEqual(Object.entries((await store.getSecret('m/b', 1))!.values), [['k', '1']]);
  await store.close();
});

test('STO-06: a tampered policy row → get fails with integrity; list ignores it and logs an alarm', async () => {
  const lines: string[] = [];
  const logger = createLogger({
    component: 'test', level: 'info',
    destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }),
  });
  const { store, file, sealer } = await opened(tempFile(), newRoot(), { logger });
  await store.putPolicy({ name: 'readers', spiffeIdPattern: '^spiffe://td/r$', pathPattern: 'a/.*', permissions: ['read'] });
  await store.putPolicy({ name: 'admins', spiffeIdPattern: '^spiffe://td/a$', pathPattern: '.*', permissions: ['super'] });
  const db = raw(file);
  // Move the admins body onto the readers row: would widen "readers" if accepted.
  const body = db.prepare('SELECT body FROM policies WHERE id = ?').pluck().get(sealer.policyId('admins')) as Buffer;
  db.prepare('UPDATE policies SET body = ? WHERE id = ?').run(body, sealer.policyId('readers'));
  db.close();
  await assert.rejects(store.getPolicy('readers'), isCode('store_integrity'));
  const list = await store.listPolicies();
  assert.deepEqual(list.map((p) => p.name), ['admins']);
  assert.ok(lines.some((l) => l.includes('integrity')), 'an alarm must be logged');
  assert.ok(!lines.some((l) => l.includes('readers')), 'the alarm must not name the policy');
  await store.close();
});

test('STO-09: another root key is refused with store_wrong_key (never "not found" for every path)', async () => {
  const { store, file } = await opened();
  await store.putSecret('k/a', { k: 'v' });
  await store.close();
  const other = new SqliteStore({ file });
  await assert.rejects(other.unlock(newRoot()), isCode('store_wrong_key'));
  assert.equal(other.isUnlocked(), false);
  await other.close();
});

test('STO-07: empty, random, truncated and non-SQLite files are refused and left untouched', async () => {
  const cases: [string, (f: string) => void][] = [
    ['zero-length', (f) => fs.writeFileSync(f, '')],
    ['random bytes', (f) => fs.writeFileSync(f, Buffer.alloc(8192, 0x5a))],
    ['text file', (f) => fs.writeFileSync(f, 'hello, not a database\n'.repeat(100))],
    ['foreign sqlite db', (f) => { const d = new Database(f); d.exec('CREATE TABLE t (x)'); d.close(); }],
    ['truncated db', (f) => {
      const d = new Database(f);
      d.pragma(`application_id = ${0x53504b54}`);
      d.exec('CREATE TABLE big (x BLOB)');
      const ins = d.prepare('INSERT INTO big VALUES (?)');
      for (let i = 0; i < 50; i++) ins.run(Buffer.alloc(4000, i));
      d.close();
      fs.truncateSync(f, 4096 * 3);
    }],
  ];
  for (const [name, make] of cases) {
    const file = tempFile();
    make(file);
    const before = fs.readFileSync(file);
    assert.throws(() => new SqliteStore({ file }), (e: unknown) => e instanceof StoreError
      && ['store_corrupt', 'store_schema_invalid'].includes(e.code), name);
    assert.deepEqual(fs.readFileSync(file), before, `${name}: file must not be modified`);
  }
});

test('STO-08: schema drift (missing table, extra column, wrong type, missing trigger) and a newer schema are refused', async () => {
  const mutate: [string, string, string][] = [
    ['missing table', 'DROP TABLE policies', 'store_schema_invalid'],
    ['extra column', 'ALTER TABLE secrets ADD COLUMN extra TEXT', 'store_schema_invalid'],
    ['extra table', 'CREATE TABLE more (x INTEGER) STRICT', 'store_schema_invalid'],
    ['wrong type', 'DROP TABLE policies; CREATE TABLE policies (id BLOB PRIMARY KEY, body TEXT NOT NULL) STRICT', 'store_schema_invalid'],
    ['missing path log trigger', 'DROP TRIGGER secrets_path_log', 'store_schema_invalid'],
    ['newer schema', 'PRAGMA user_version = 99', 'store_schema_too_new'],
  ];
  for (const [name, sql, code] of mutate) {
    const { store, file } = await opened();
    await store.close();
    const d = raw(file);
    d.exec(sql);
    d.close();
    assert.throws(() => new SqliteStore({ file }), isCode(code), name);
  }
});

test('STO-10: with umask 000, data dir is 0700 and db, -wal, -shm are 0600', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-umask-'));
  dirs.push(base);
  const old = process.umask(0);
  try {
    const file = path.join(base, 'data', 'spike.db');
    const { store } = await opened(file);
    await store.putSecret('u/a', { k: 'v' });
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      assert.equal(fs.statSync(f).mode & 0o777, 0o600, path.basename(f));
    }
    await store.close();
  } finally {
    process.umask(old);
  }
});

test('D12: concurrent writes share one transaction; a failing write in the batch is rolled back alone', async () => {
  const { store } = await opened();
  await store.putSecret('g/cas', { k: '1' });
  const s0 = store.stats();
  const writes = Array.from({ length: 64 }, (_, i) => store.putSecret(`g/p${i}`, { k: String(i) }));
  const bad = store.putSecret('g/cas', { k: 'x' }, { cas: 5 });
  const good = store.putSecret('g/cas', { k: '2' }, { cas: 1 });
  const res = await Promise.allSettled([...writes, bad, good]);
  const s1 = store.stats();
  assert.equal(s1.transactions - s0.transactions, 1, 'all 66 writes in one transaction');
  assert.equal(s1.writes - s0.writes, 66);
  assert.equal(res.filter((r) => r.status === 'rejected').length, 1);
  assert.ok(res[64]!.status === 'rejected' && isCode('store_cas_mismatch')(res[64]!.reason));
  assert.equal((await store.getSecret('g/cas'))?.version, 2);
  for (let i = 0; i < 64; i++) assert.equal((await store.getSecret(`g/p${i}`))?.values['k'], String(i));
  await store.close();
});

test('D12: batches are capped at maxBatch (300 writes → 3 transactions of ≤ 128)', async () => {
  const { store } = await opened();
  const s0 = store.stats();
  await Promise.all(Array.from({ length: 300 }, (_, i) => store.putSecret(`cap/p${i % 7}`, { k: String(i) }, { maxVersions: 100 })));
  assert.equal(store.stats().transactions - s0.transactions, 3);
  assert.equal((await store.getSecretMetadata('cap/p0'))?.metadata.lastVersion, 43);
  await store.close();
});

test('D12: groupCommitWindowMs gathers writes issued a few ms apart into one transaction', async () => {
  // A window far longer than the 5 ms gap, so a loaded machine delaying the second write by
  // tens of milliseconds still lands it in the same window.
  const { store } = await opened(tempFile(), newRoot(), { groupCommitWindowMs: 1_000 });
  const s0 = store.stats();
  const first = store.putSecret('win/a', { k: '1' });
  await new Promise((r) => setTimeout(r, 5));
  const second = store.putSecret('win/b', { k: '2' });
  await Promise.all([first, second]);
  assert.equal(store.stats().transactions - s0.transactions, 1);
  await store.close();
});

test('D12: with group commit off, each write is its own transaction', async () => {
  const { store } = await opened(tempFile(), newRoot(), { groupCommit: false });
  const s0 = store.stats();
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.putSecret(`n/p${i}`, { k: String(i) })));
  assert.equal(store.stats().transactions - s0.transactions, 10);
  await store.close();
});

test('B2 on disk: pruned and destroyed versions are deleted rows, not just hidden', async () => {
  const { store, file, sealer } = await opened();
  for (let i = 0; i < 12; i++) await store.putSecret('r/a', { k: String(i) }, { maxVersions: 3 });
  await store.destroySecret('r/a', [11]);
  const db = raw(file);
  const versions = db.prepare('SELECT version FROM secret_versions WHERE id = ? ORDER BY version').pluck().all(sealer.secretId('r/a'));
  db.close();
  assert.deepEqual(versions, [10, 12]);
  await store.close();
});

test('close waits for queued writes to commit', async () => {
  const { store, file, root } = await opened();
  const pending = Array.from({ length: 20 }, (_, i) => store.putSecret(`c/p${i}`, { k: String(i) }));
  await store.close();
  await Promise.all(pending);
  const again = new SqliteStore({ file });
  await again.unlock(root);
  assert.equal((await again.listSecretPaths()).length, 20);
  await again.close();
});

const hasSqliteCli = spawnSync('sqlite3', ['-version']).status === 0;

test('STO-12: an external sqlite3 holding BEGIN IMMEDIATE → store_busy after busy_timeout, no partial state', { skip: !hasSqliteCli && 'sqlite3 CLI not installed' }, async () => {
  const { store, file } = await opened(tempFile(), newRoot(), { busyTimeoutMs: 300 });
  await store.putSecret('b/a', { k: '1' });
  const cli = spawn('sqlite3', [file], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const locked = new Promise<void>((resolve, reject) => {
      let out = '';
      cli.stdout.on('data', (c: Buffer) => { out += String(c); if (out.includes('LOCKED')) resolve(); });
      cli.on('exit', () => reject(new Error('sqlite3 exited early')));
    });
    cli.stdin.write('BEGIN IMMEDIATE;\n.print LOCKED\n');
    await locked;
    const t0 = Date.now();
    await assert.rejects(store.putSecret('b/a', { k: '2' }), isCode('store_busy'));
    assert.ok(Date.now() - t0 >= 250, 'waited for busy_timeout');
    cli.stdin.write('ROLLBACK;\n.quit\n');
    await new Promise((r) => cli.once('exit', r));
    assert.equal((await store.getSecret('b/a'))?.version, 1);
    assert.deepEqual(await store.putSecret('b/a', { k: '2' }), { version: 2 });
  } finally {
    cli.kill('SIGKILL');
    await store.close();
  }
});
