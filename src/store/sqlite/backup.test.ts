/**
 * `backupSqliteFile` / `verifySqliteBackup` on real files: a consistent copy while another
 * process keeps writing (sequential writes, so a consistent copy holds exactly a prefix of
 * them, at least every write acknowledged before the backup began, and the writer is never
 * stopped); mode 0600; no temporary file left; an existing destination refused without
 * `force` (untouched) and replaced with it; destinations in the data folder refused; a
 * failed backup leaves nothing; verify reads a backup without the key and refuses non-stores.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { SqliteStore } from './store.js';
import { BackupError, backupSqliteFile, verifySqliteBackup } from './backup.js';

const KEY_HEX = '11'.repeat(32);
const roots: RootKey[] = [];
after(() => {
  for (const r of roots) r.destroy();
});
const root = (): RootKey => {
  const r = RootKey.fromBytes(Buffer.from(KEY_HEX, 'hex'));
  roots.push(r);
  return r;
};

async function seeded(n: number): Promise<{ dir: string; file: string }> {
  const dir = tempDir('spike-backup-src-');
  const file = path.join(dir, 'data', 'spike.db');
  const store = new SqliteStore({ file });
  await store.unlock(root());
  for (let i = 0; i < n; i++) await store.putSecret(`s/${i}`, { v: `value-${i}` });
  await store.putPolicy({ name: 'p', spiffeIdPattern: '^spiffe://x/.*$', pathPattern: '^s/.*$', permissions: ['read'] });
  await store.close();
  return { dir, file };
}

const refused = (pattern: RegExp) => (e: unknown): boolean => e instanceof BackupError && e.code === 'backup_refused' && pattern.test(e.message);

/** Paths → values of a backup file, read back with the key through the store. */
async function readBack(file: string): Promise<Map<string, string>> {
  const copy = path.join(tempDir('spike-backup-read-'), 'spike.db');
  fs.copyFileSync(file, copy);
  const store = new SqliteStore({ file: copy });
  await store.unlock(root());
  const out = new Map<string, string>();
  for (const p of await store.listSecretPaths()) out.set(p, (await store.getSecret(p))!.values['n']!);
  await store.close();
  return out;
}

test('a backup taken while another process keeps writing is one consistent snapshot; writes go on', async () => {
  const { file } = await seeded(0);
  const storeUrl = new URL('./store.js', import.meta.url).href;
  const cryptoUrl = new URL('../../crypto/index.js', import.meta.url).href;
  const script = `
    const { SqliteStore } = await import(${JSON.stringify(storeUrl)});
    const { RootKey } = await import(${JSON.stringify(cryptoUrl)});
    const store = new SqliteStore({ file: ${JSON.stringify(file)} });
    await store.unlock(RootKey.fromBytes(Buffer.from(${JSON.stringify(KEY_HEX)}, 'hex')));
    for (let i = 0; ; i++) {
      await store.putSecret('w/' + String(i).padStart(6, '0'), { n: String(i), pad: 'x'.repeat(2000) });
      process.stdout.write('acked ' + (i + 1) + '\\n');
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acked = 0;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    acked = Number(l.split(' ')[1]);
  });
  try {
    const deadline = Date.now() + 30_000;
    while (acked < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(acked >= 300, 'writer started');
    const dest = path.join(tempDir('spike-backup-dst-'), 'b.db');
    const ackedBefore = acked;
    const info = await backupSqliteFile({ source: file, dest });
    const ackedAfter = acked;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(acked > ackedAfter, `the writer was not stopped (${ackedAfter} → ${acked})`);
    assert.equal(fs.statSync(dest).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['b.db'], 'no temporary file left');
    const got = await readBack(dest);
    assert.equal(info.secrets, got.size);
    // Sequential writes: a consistent snapshot holds exactly w/0 … w/(m-1).
    const m = got.size;
    assert.ok(m >= ackedBefore, `every write acknowledged before the backup is in it (${m} ≥ ${ackedBefore})`);
    for (let i = 0; i < m; i++) assert.equal(got.get(`w/${String(i).padStart(6, '0')}`), String(i));
    assert.deepEqual(verifySqliteBackup(dest).secrets, m);
  } finally {
    child.kill('SIGKILL');
  }
});

test('an existing destination is refused (untouched) without force and replaced atomically with it', async () => {
  const { file } = await seeded(3);
  const dest = path.join(tempDir('spike-backup-dst-'), 'b.db');
  fs.writeFileSync(dest, 'precious');
  await assert.rejects(backupSqliteFile({ source: file, dest }), refused(/already exists \(use --force/));
  assert.equal(fs.readFileSync(dest, 'utf8'), 'precious');
  assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['b.db']);
  const info = await backupSqliteFile({ source: file, dest, force: true });
  assert.deepEqual({ secrets: info.secrets, policies: info.policies, initialised: info.initialised }, { secrets: 3, policies: 1, initialised: true });
  assert.equal(fs.statSync(dest).mode & 0o777, 0o600);
  assert.equal((await readBack(dest)).size, 3);
  // A directory (or other non-file) is refused even with force.
  const asDir = path.join(path.dirname(dest), 'sub');
  fs.mkdirSync(asDir);
  await assert.rejects(backupSqliteFile({ source: file, dest: asDir, force: true }), refused(/not a regular file/));
});

test('destinations in the live data folder (or below it, or through a symlink) and missing folders are refused', async () => {
  const { dir, file } = await seeded(1);
  const data = path.dirname(file);
  await assert.rejects(backupSqliteFile({ source: file, dest: file, force: true }), refused(/inside the live data directory/));
  await assert.rejects(backupSqliteFile({ source: file, dest: path.join(data, 'x.db') }), refused(/inside the live data directory/));
  fs.mkdirSync(path.join(data, 'sub'));
  await assert.rejects(backupSqliteFile({ source: file, dest: path.join(data, 'sub', 'x.db') }), refused(/inside the live data directory/));
  fs.symlinkSync(data, path.join(dir, 'link'));
  await assert.rejects(backupSqliteFile({ source: file, dest: path.join(dir, 'link', 'x.db') }), refused(/inside the live data directory/));
  await assert.rejects(backupSqliteFile({ source: file, dest: path.join(dir, 'nope', 'x.db') }), refused(/does not exist/));
  await assert.rejects(backupSqliteFile({ source: path.join(dir, 'none.db'), dest: path.join(dir, 'x.db') }), refused(/no SQLite store/));
  assert.deepEqual(fs.readdirSync(data).sort(), ['spike.db', 'sub']);
});

test('a source that is not a SPIKE store fails and leaves nothing behind; verify refuses it too', async () => {
  const src = path.join(tempDir('spike-backup-src-'), 'spike.db');
  fs.writeFileSync(src, Buffer.alloc(8192, 7));
  const out = tempDir('spike-backup-dst-');
  await assert.rejects(backupSqliteFile({ source: src, dest: path.join(out, 'b.db') }), (e: unknown) => e instanceof BackupError && e.code === 'backup_failed');
  assert.deepEqual(fs.readdirSync(out), []);
  assert.throws(() => verifySqliteBackup(src), (e: unknown) => e instanceof BackupError && e.code === 'backup_failed');
  assert.throws(() => verifySqliteBackup(path.join(out, 'absent.db')), refused(/no file/));
});

test('verify-backup changes nothing: a file in WAL mode (a copy of a live store) is refused without -wal or -shm appearing beside it', () => {
  const dir = tempDir('spike-backup-wal-');
  const file = path.join(dir, 'copy.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x)');
  db.close();
  assert.deepEqual(fs.readdirSync(dir), ['copy.db']);
  assert.throws(() => verifySqliteBackup(file), refused(/WAL mode: not a file written by `spike-nexus backup`/));
  assert.deepEqual(fs.readdirSync(dir), ['copy.db']);
});
