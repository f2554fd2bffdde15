/**
 * Listing across processes on one SQLite file (several Nexus workers): what another process
 * created reaches this process's path index through the path log (schema 2), without a rebuild
 * that decrypts every path; a file from before the path log lists completely once migrated;
 * a log that went backwards falls back to a rebuild. The "other process" is a second
 * connection in this process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import type { PathRow } from '../path-catalog.js';
import { SqliteStore } from './store.js';

const dirs: string[] = [];
const roots: RootKey[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  for (const r of roots) r.destroy();
});

function setup(): { file: string; root: RootKey } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sqlite-paths-'));
  dirs.push(dir);
  const root = RootKey.generate();
  roots.push(root);
  return { file: path.join(dir, 'spike.db'), root };
}

/** Counts full index builds (each decrypts every path). */
class CountingStore extends SqliteStore {
  builds = 0;
  protected override async readAllPaths(visit: (rows: PathRow[]) => Promise<void>): Promise<string> {
    this.builds++;
    return super.readAllPaths(visit);
  }
}

async function open<T extends SqliteStore>(make: () => T, root: RootKey): Promise<T> {
  const s = make();
  await s.unlock(root);
  return s;
}

/** Two workers on one file: `a` writes, `b` counts its index builds; `body` runs, both close. */
async function twoWorkers(file: string, root: RootKey, body: (a: SqliteStore, b: CountingStore) => Promise<void>): Promise<void> {
  const a = await open(() => new SqliteStore({ file, shared: true }), root);
  const b = await open(() => new CountingStore({ file, shared: true }), root);
  try {
    await body(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

test('workers: paths another process created are listed without rebuilding the index', async () => {
  const { file, root } = setup();
  await twoWorkers(file, root, async (a, b) => {
    await a.putSecret('app/one', { k: '1' });
    assert.deepEqual(await b.listSecretPaths(), ['app/one']);
    assert.equal(b.builds, 1);
    await a.putSecret('app/two', { k: '2' });
    await a.putSecret('app/one', { k: '1b' }); // a new version: no new path
    await b.putSecret('app/three', { k: '3' }); // this process's own creation
    await a.putSecret('db/four', { k: '4' });
    assert.deepEqual(await b.listSecretPaths(), ['app/one', 'app/three', 'app/two', 'db/four']);
    assert.deepEqual(await b.listSecretPaths(), ['app/one', 'app/three', 'app/two', 'db/four']);
    assert.equal(b.builds, 1, 'no rebuild after other processes wrote');
    assert.deepEqual(await a.listSecretPaths(), ['app/one', 'app/three', 'app/two', 'db/four']);
  });
});

test('workers: a file from before the path log (schema 1) is migrated and lists every path', async () => {
  const { file, root } = setup();
  const first = await open(() => new SqliteStore({ file }), root);
  await first.putSecret('old/a', { k: '1' });
  await first.putSecret('old/b', { k: '2' });
  await first.close();
  const raw = new Database(file);
  raw.exec('DROP TRIGGER secrets_path_log; DROP TABLE path_log; DROP TABLE anchor_history; PRAGMA user_version = 1');
  raw.close();
  await twoWorkers(file, root, async (a, b) => {
    assert.deepEqual(await b.listSecretPaths(), ['old/a', 'old/b']);
    await a.putSecret('new/c', { k: '3' });
    assert.deepEqual(await b.listSecretPaths(), ['new/c', 'old/a', 'old/b']);
    assert.equal(b.builds, 1);
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), 3);
    check.close();
  });
});

test('workers: a path log that went backwards (another file put in place) makes the next listing rebuild', async () => {
  const { file, root } = setup();
  await twoWorkers(file, root, async (a, b) => {
    await a.putSecret('p/1', { k: '1' });
    await a.putSecret('p/2', { k: '2' });
    assert.deepEqual(await b.listSecretPaths(), ['p/1', 'p/2']);
    const raw = new Database(file);
    raw.exec('DELETE FROM path_log');
    raw.close();
    await a.putSecret('p/3', { k: '3' });
    assert.deepEqual(await b.listSecretPaths(), ['p/1', 'p/2', 'p/3']);
    assert.equal(b.builds, 2, 'rebuilt once');
  });
});
