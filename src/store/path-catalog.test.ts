/**
 * The path catalog (build, "created since" refresh, own writes) against a scripted feed,
 * and the SQLite backend's foreign-writer detection (a second connection's commit moves
 * `data_version`, so the next list rebuilds and misses nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RootKey } from '../crypto/index.js';
import { PathCatalog, type PathFeed, type PathRow } from './path-catalog.js';
import { SqliteStore } from './sqlite/store.js';

const row = (p: string): PathRow => ({ id: Buffer.from(p), path: Buffer.from(p) });
const open = (r: PathRow): string => r.path.toString();

/** A database of paths with a commit counter as its mark; reads can be held open. */
class FakeFeed implements PathFeed {
  committed: string[] = [];
  reads = 0;
  rebuildNext = false;
  gate: Promise<void> | undefined;
  /** Rows handed over per page (the real SQLite feed pages by key). */
  page = 1000;
  async readAll(visit: (rows: PathRow[]) => Promise<void>): Promise<string> {
    this.reads++;
    const snap = [...this.committed]; // the snapshot is taken when the read is sent
    await this.gate;
    for (let i = 0; i < snap.length; i += this.page) await visit(snap.slice(i, i + this.page).map(row));
    return String(snap.length);
  }
  async readSince(mark: string): Promise<{ rows: PathRow[]; mark: string } | null> {
    this.reads++;
    const snap = [...this.committed];
    await this.gate;
    if (this.rebuildNext) {
      this.rebuildNext = false;
      return null;
    }
    return { rows: snap.slice(Number(mark)).map(row), mark: String(snap.length) };
  }
}

const all = (c: PathCatalog): string[] => c.index.range('', undefined, 1e9);

test('catalog: builds once, then adds only what was created since', async () => {
  const feed = new FakeFeed();
  feed.committed.push('b', 'a');
  const c = new PathCatalog(feed, open);
  await c.refresh();
  assert.deepEqual(all(c), ['a', 'b']);
  feed.committed.push('c'); // another instance
  await c.refresh();
  assert.deepEqual(all(c), ['a', 'b', 'c']);
  feed.rebuildNext = true; // the backend cannot tell what changed
  feed.committed.push('0');
  await c.refresh();
  assert.deepEqual(all(c), ['0', 'a', 'b', 'c']);
});

test('catalog: a path created by this process while the build reads is not lost', async () => {
  const feed = new FakeFeed();
  feed.committed.push('old');
  let release!: () => void;
  feed.gate = new Promise((r) => { release = r; });
  const c = new PathCatalog(feed, open);
  const building = c.refresh();
  feed.committed.push('mine'); // committed after the build's snapshot…
  c.noteCreated('mine'); // …and acknowledged before the build finished
  release();
  await building;
  assert.deepEqual(all(c), ['mine', 'old']);
});

test('catalog: a list never joins a refresh whose read was already sent (acknowledged-before-list promise)', async () => {
  const feed = new FakeFeed();
  const c = new PathCatalog(feed, open);
  await c.refresh();
  let release!: () => void;
  feed.gate = new Promise((r) => { release = r; });
  const first = c.refresh(); // its read is in flight, before the commit below
  feed.committed.push('late'); // acknowledged by another instance now
  const second = c.refresh(); // a list that started after the acknowledgement
  const third = c.refresh(); // joins the queued one: at most two refreshes at a time
  assert.equal(second, third);
  release();
  await first;
  assert.deepEqual(all(c), [], 'the first refresh read before the commit');
  feed.gate = undefined;
  await second;
  assert.deepEqual(all(c), ['late']);
});

test('catalog: clear() drops the index and any build in flight (store closing)', async () => {
  const feed = new FakeFeed();
  feed.committed.push('x');
  let release!: () => void;
  feed.gate = new Promise((r) => { release = r; });
  const c = new PathCatalog(feed, open);
  const building = c.refresh();
  c.clear();
  release();
  await assert.rejects(building, { code: 'store_closed' });
  assert.equal(c.index.size, 0);
  assert.equal(c.built, false);
});

test('catalog: a failed build leaves nothing half-built; the next refresh builds again', async () => {
  const feed = new FakeFeed();
  feed.committed.push('a', 'bad', 'c');
  let fail = true;
  const c = new PathCatalog(feed, (r) => {
    if (fail && r.path.toString() === 'bad') throw Object.assign(new Error('integrity'), { code: 'store_integrity' });
    return open(r);
  });
  await assert.rejects(c.refresh(), { code: 'store_integrity' });
  assert.equal(c.built, false);
  fail = false;
  await c.refresh();
  assert.deepEqual(all(c), ['a', 'bad', 'c']);
});

test('sqlite: a commit by another connection to the same file is listed (data_version → rebuild)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-paths-'));
  const root = RootKey.generate();
  const file = path.join(dir, 'spike.db');
  const a = new SqliteStore({ file });
  const b = new SqliteStore({ file });
  try {
    await a.unlock(root);
    await b.unlock(root);
    await a.putSecret('shared/a', { k: '1' });
    assert.deepEqual((await a.listSecretPathPage({ prefix: 'shared/' })).paths, ['shared/a']);
    await b.putSecret('shared/b', { k: '1' });
    assert.deepEqual((await a.listSecretPathPage({ prefix: 'shared/' })).paths, ['shared/a', 'shared/b']);
    assert.deepEqual((await b.listSecretPathPage({ prefix: 'shared/' })).paths, ['shared/a', 'shared/b']);
  } finally {
    await a.close();
    await b.close();
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('catalog: a build over many pages has every path, once', async () => {
  const feed = new FakeFeed();
  feed.page = 3;
  for (let i = 0; i < 10; i++) feed.committed.push(`p/${9 - i}`);
  const c = new PathCatalog(feed, open);
  await c.refresh();
  assert.deepEqual(all(c), Array.from({ length: 10 }, (_, i) => `p/${i}`));
});

test('sqlite: the index of a reopened store with more paths than one page (keyset pages) lists them all', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-paths-'));
  const root = RootKey.generate();
  const file = path.join(dir, 'spike.db');
  const n = 1203; // two full pages of 500 and a partial one
  const want = Array.from({ length: n }, (_, i) => `many/${String(i).padStart(4, '0')}`);
  try {
    const w = new SqliteStore({ file });
    await w.unlock(root);
    await Promise.all(want.map((p) => w.putSecret(p, { k: 'v' })));
    await w.close();
    const r = new SqliteStore({ file });
    try {
      await r.unlock(root);
      assert.deepEqual((await r.listSecretPathPage({ prefix: 'many/' })).paths, want);
    } finally {
      await r.close();
    }
  } finally {
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
