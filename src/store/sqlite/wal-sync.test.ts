/**
 * D12 with the WAL synced off the event loop (wal-sync.ts, read-fence.ts): an acknowledgement
 * and any answer that shows a commit wait for an fdatasync of the WAL that started after that
 * commit; a read of something else does not wait; syncs are shared and at most two run at
 * once; a failed sync fails what waits and refuses every later write and read. Real files;
 * the sync itself is injected so that the tests decide when it completes (or fails).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Writable } from 'node:stream';
import { RootKey } from '../../crypto/index.js';
import { createLogger } from '../../lib/log.js';
import { StoreError } from '../types.js';
import { ANCHOR_MAC_BYTES, anchorCounter, anchorPrefix } from '../anchor.js';
import { SqliteStore } from './store.js';
import { WalSync, type SyncFile } from './wal-sync.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { oldSnapshot } from '../../../test/helpers/sqlite-snapshot.js';

const roots: RootKey[] = [];
after(() => {
  for (const r of roots) r.destroy();
});

const tempFile = (): string => path.join(tempDir('spike-walsync-'), 'spike.db');

interface ManualSync {
  sync: SyncFile;
  /** Each started call's completion, while not `auto`. */
  pending: Array<(err?: NodeJS.ErrnoException) => void>;
  calls: () => number;
  /** Complete every sync at once (a store's set-up), until set to false. */
  auto: boolean;
}

/** A sync the test completes by hand (or at once while `auto`). */
function manualSync(auto = false): ManualSync {
  let calls = 0;
  const m: ManualSync = {
    pending: [],
    calls: () => calls,
    auto,
    sync: (fd, done) => {
      calls++;
      fs.fstatSync(fd); // a real, open descriptor of the WAL file
      if (m.auto) setImmediate(() => done(null));
      else m.pending.push((err) => done(err ?? null));
    },
  };
  return m;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A WAL sync over a real (empty) file, with its syncs completed by hand. */
function newWal(): { wal: WalSync; m: ManualSync } {
  const file = tempFile();
  fs.writeFileSync(file, '');
  const m = manualSync();
  return { wal: new WalSync(file, m.sync), m };
}

/** Whether `p` settled within a few event-loop turns. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 5; i++) await tick();
  return done;
}

/** A store unlocked (its key records written and synced), then with syncs completed by hand. */
async function openedStore(m: ManualSync, shared = false): Promise<SqliteStore> {
  const root = RootKey.generate();
  roots.push(root);
  m.auto = true;
  const store = new SqliteStore({ file: tempFile(), syncFile: m.sync, shared });
  await store.unlock(root);
  m.auto = false;
  return store;
}

/** A PUT, its sync completed by hand. */
async function putSynced(store: SqliteStore, m: ManualSync, p: string, values: Record<string, string>): Promise<void> {
  const put = store.putSecret(p, values);
  await syncStarted(m);
  m.pending.shift()!();
  await put;
}

/** Completes every sync started, and those they start, until none is left. */
async function completeAll(m: ManualSync): Promise<void> {
  for (let i = 0; i < 100; i++) {
    await tick();
    const next = m.pending.shift();
    if (next !== undefined) next();
    else if (i > 5) return;
  }
}

/** Waits until a sync was started (at most a few turns). */
async function syncStarted(m: ManualSync): Promise<void> {
  for (let i = 0; i < 20 && m.pending.length === 0; i++) await tick();
  assert.equal(m.pending.length, 1, 'committed, and the WAL sync started');
}

test('D12 wal sync: a commit waits for a sync started after it; commits during a sync share the next one; at most two run at once', async () => {
  const { wal, m } = newWal();
  const a = wal.until(wal.noteCommit())!;
  assert.equal(m.calls(), 1);
  const b = wal.until(wal.noteCommit())!; // committed while the first sync runs: not covered by it
  assert.equal(m.calls(), 2, 'a second sync starts at once for the later commit');
  const c = wal.until(wal.noteCommit())!;
  assert.equal(m.calls(), 2, 'no third sync while two run');
  m.pending.shift()!();
  assert.equal(await settled(a), true);
  assert.equal(await settled(b), false, 'the first sync started before commit 2');
  assert.equal(m.calls(), 3, 'a slot freed: the sync for commit 3 starts');
  m.pending.shift()!(); // covers commit 2
  assert.equal(await settled(b), true);
  assert.equal(await settled(c), false);
  m.pending.shift()!();
  assert.equal(await settled(c), true);
  assert.equal(wal.durable(), 3);
  assert.equal(wal.until(2), undefined, 'already on disk: nothing to wait for');
  await wal.close();
});

test('D12 wal sync: the later of two syncs finishing first covers the earlier commits too', async () => {
  const { wal, m } = newWal();
  const a = wal.until(wal.noteCommit())!;
  const b = wal.until(wal.noteCommit())!;
  m.pending[1]!(); // the second sync (started after commit 2) completes first
  assert.equal(await settled(a), true);
  assert.equal(await settled(b), true);
  m.pending[0]!();
  await tick();
  assert.equal(wal.durable(), 2);
  await wal.close();
});

test('D12 wal sync: a failed sync rejects what waits (outcome unknown) and every later wait (the gate stays shut)', async () => {
  const { wal, m } = newWal();
  let reported: string | undefined;
  wal.onFailure = (e) => { reported = e.code; };
  const a = wal.until(wal.noteCommit())!;
  const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  m.pending.shift()!(eio);
  await assert.rejects(a, (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.failure === 'io_error' && e.outcome === 'unknown');
  assert.equal(reported, 'EIO');
  assert.equal(wal.failed('not_applied')?.outcome, 'not_applied');
  await assert.rejects(wal.until(0)!, (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable');
  await wal.close();
});

test('D12 store: a PUT is acknowledged only after the WAL sync; a read of it waits for the sync, a read of another secret does not', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  await putSynced(store, m, 'apps/other', { v: 'steady' });

  const put = store.putSecret('apps/db', { pass: 'new' });
  await syncStarted(m);
  assert.equal(await settled(put), false, 'not acknowledged before the sync completed');
  const seenEarly = store.getSecret('apps/db');
  assert.equal(await settled(seenEarly), false, 'a read of the committed, unsynced secret waits');
  assert.deepEqual({ ...(await store.getSecret('apps/other'))?.values }, { v: 'steady' }, 'a read of another secret answers at once');
  const listed = store.listSecretPaths();
  assert.equal(await settled(listed), false, 'a list that could show the new path waits too');
  m.pending.shift()!();
  assert.deepEqual(await put, { version: 1 });
  assert.deepEqual({ ...(await seenEarly)?.values }, { pass: 'new' });
  assert.deepEqual((await listed).sort(), ['apps/db', 'apps/other']);
  await store.close();
});

test('D12 store: a failed WAL sync fails the waiting PUT (outcome unknown), then refuses every write (not applied) and read', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  const before = m.calls();
  const put = store.putSecret('apps/db', { pass: 'x' });
  await syncStarted(m);
  m.pending.shift()!(Object.assign(new Error('EIO'), { code: 'EIO' }));
  await assert.rejects(put, (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.outcome === 'unknown');
  await assert.rejects(store.putSecret('apps/other', { v: '1' }), (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.outcome === 'not_applied');
  await assert.rejects(store.getSecret('apps/never-written'), (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable');
  assert.equal(m.calls(), before + 1, 'no sync after the failure');
  await store.close();
  // Not folded into the file at close (that checkpoint's sync could not be trusted): the next start copies all of it.
  assert.ok(fs.statSync(`${store.file}-wal`).size > 0, 'the log is kept');
});

test('D12 store: policies written and not yet synced hold back policy reads; shared mode keeps SQLite\'s own sync (no WAL sync calls)', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  const put = store.putPolicy({ name: 'p', spiffeIdPattern: '^spiffe://x/y$', pathPattern: '^a$', permissions: ['read'] });
  await syncStarted(m);
  const listed = store.listPolicies();
  assert.equal(await settled(listed), false);
  m.pending.shift()!();
  await put;
  assert.deepEqual((await listed).map((p) => p.name), ['p']);
  await store.close();

  const s = manualSync();
  const shared = await openedStore(s, true);
  await shared.putSecret('a', { v: '1' });
  assert.deepEqual({ ...(await shared.getSecret('a'))?.values }, { v: '1' });
  assert.equal(s.calls(), 0);
  await shared.close();
});

test('D12 store: the rollback anchor\'s counter is read (for the Keepers) only once the commit that wrote it is on disk', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  const seal = (stored: Uint8Array | null, min: bigint): Uint8Array => {
    const next = (anchorCounter(stored) ?? 0n) + 1n;
    return Buffer.concat([anchorPrefix(next > min ? next : min), Buffer.alloc(ANCHOR_MAC_BYTES)]);
  };
  store.anchor.arm(seal);
  const put = store.putSecret('apps/db', { pass: 'x' });
  await syncStarted(m);
  const counter = store.anchor.read();
  assert.equal(await settled(counter), false, 'a counter not yet on disk is not handed out');
  m.pending.shift()!();
  await put;
  assert.equal(anchorCounter(await counter), 1n);
  await store.close();
});

test('D12 store: an answer decided on a commit not yet synced waits for it, even when the write itself fails (a cas refusal)', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  const put = store.putSecret('apps/b', { v: '1' });
  await syncStarted(m);
  const refused = store.putSecret('apps/b', { v: '2' }, { cas: 0 });
  assert.equal(await settled(refused), false, '"it exists" is not said before the write that created it is on disk');
  m.pending.shift()!();
  await put;
  await completeAll(m);
  await assert.rejects(refused, (e: unknown) => e instanceof StoreError && e.code === 'store_cas_mismatch');
  await store.close();
});

test('D12 store: a symlinked spike.db is synced through the log SQLite uses, never a file beside the link; each sync slot has its own open of it', async () => {
  const dir = tempDir('spike-walsync-link-');
  fs.mkdirSync(path.join(dir, 'real'));
  const link = path.join(dir, 'spike.db');
  const made = new SqliteStore({ file: path.join(dir, 'real', 'x.db') });
  await made.close();
  fs.symlinkSync(path.join(dir, 'real', 'x.db'), link);
  fs.writeFileSync(`${link}-wal`, ''); // a stale (or planted) file where the link's log would be
  const inodes: number[] = [];
  const fds = new Set<number>();
  const m = manualSync(true);
  const recording: SyncFile = (fd, done) => {
    inodes.push(fs.fstatSync(fd).ino);
    fds.add(fd);
    m.sync(fd, done);
  };
  const root = RootKey.generate();
  roots.push(root);
  const store = new SqliteStore({ file: link, syncFile: recording });
  await store.unlock(root);
  m.auto = false;
  const puts = [store.putSecret('a', { v: '1' })];
  await syncStarted(m);
  puts.push(store.putSecret('b', { v: '2' }));
  for (let i = 0; i < 20 && m.pending.length < 2; i++) await tick();
  assert.equal(m.pending.length, 2, 'two syncs in flight');
  await completeAll(m);
  await Promise.all(puts);
  const real = fs.statSync(path.join(dir, 'real', 'x.db-wal')).ino;
  assert.ok(inodes.length > 0);
  assert.deepEqual([...new Set(inodes)], [real], 'every sync was of the real log');
  assert.equal(fds.size, 2, 'the two slots sync through two descriptors');
  await store.close();
});

test('D12 store: opening checkpoints the whole log into the database file first (nothing committed unsynced by a previous process is served from the log)', async () => {
  const file = tempFile();
  const m = manualSync(true);
  await new SqliteStore({ file, syncFile: m.sync }).close();
  // Another connection commits without syncing and stays open (its log is not removed).
  const other = new Database(file);
  other.pragma('synchronous = OFF');
  other.pragma('wal_autocheckpoint = 0');
  other.prepare('INSERT INTO system (key, value) VALUES (?, ?)').run('test-marker', Buffer.from('x'));
  assert.ok(fs.statSync(`${file}-wal`).size > 0, 'the commit is in the log');
  const root = RootKey.generate();
  roots.push(root);
  const store = new SqliteStore({ file, syncFile: m.sync });
  assert.equal(fs.statSync(`${file}-wal`).size, 0, 'the log was checkpointed into spike.db and emptied');
  const copy = path.join(tempDir('spike-walsync-copy-'), 'copy.db');
  fs.copyFileSync(file, copy); // the database file alone, without its log
  const alone = new Database(copy, { readonly: true });
  assert.equal((alone.prepare('SELECT count(*) AS n FROM system WHERE key = ?').get('test-marker') as { n: number }).n, 1, 'the commit is in spike.db itself');
  alone.close();
  await store.close();
  other.close();
});

/** A logger at `level` whose lines are kept. */
function logLines(level: 'warn' | 'info'): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ component: 'test', level, destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) }) };
}

test('D12 store: a reader in another process that keeps the start-up checkpoint from completing gets a WARN line; the log is rewritten in place and synced; the store opens and serves', async () => {
  const file = tempFile();
  await new SqliteStore({ file }).close();
  const { reader, writer } = oldSnapshot(file);
  const { lines, logger } = logLines('warn');
  const root = RootKey.generate();
  roots.push(root);
  // A sync alone writes only dirty pages: pages of the log a failed sync left clean in the
  // page cache would stay off the disk. The store writes every block back (same bytes), which
  // moves the file's modification time; a sync alone does not.
  const wal = `${file}-wal`;
  const before = fs.readFileSync(wal);
  const old = new Date(Date.now() - 3_600_000);
  fs.utimesSync(wal, old, old);
  const store = new SqliteStore({ file, busyTimeoutMs: 100, logger });
  assert.ok(lines.some((l) => l.includes('kept the database log from being checkpointed') && l.includes('rewritten in place')), lines.join(''));
  assert.ok(fs.statSync(wal).mtimeMs > old.getTime() + 1_800_000, 'the log was written back, not only synced');
  assert.ok(fs.readFileSync(wal).subarray(0, before.length).equals(before), 'the log bytes are unchanged');
  await store.unlock(root);
  await store.putSecret('a', { v: '1' });
  assert.deepEqual({ ...(await store.getSecret('a'))?.values }, { v: '1' });
  reader.exec('COMMIT');
  reader.close();
  writer.close();
  await store.close();
});

test('D12 store: an old reader and a write lock held by other processes at start: the store opens; the first write batch rewrites the log under its own lock (once), then writes', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  roots.push(root);
  const first = new SqliteStore({ file });
  await first.unlock(root);
  await first.putSecret('before', { v: '0' });
  await first.close();
  const { reader, writer } = oldSnapshot(file);
  writer.exec('BEGIN IMMEDIATE'); // and the write lock
  const { lines, logger } = logLines('info');
  const wal = `${file}-wal`;
  const old = new Date(Date.now() - 3_600_000);
  fs.utimesSync(wal, old, old);
  const store = new SqliteStore({ file, busyTimeoutMs: 100, logger });
  try {
    assert.ok(lines.some((l) => l.includes('another process holds the write lock') && l.includes('before the first write')), lines.join(''));
    assert.ok(fs.statSync(wal).mtimeMs < old.getTime() + 1_800_000, 'not rewritten yet: the lock is taken');
    writer.exec('COMMIT');
    // unlock() writes (the run's anchor): the first write batch, which rewrites the log first.
    await store.unlock(root);
    assert.equal(lines.filter((l) => l.includes('"msg":"the database log was rewritten in place and synced before the first write"')).length, 1, lines.join(''));
    assert.deepEqual({ ...(await store.getSecret('before'))?.values }, { v: '0' });
    await store.putSecret('a', { v: '1' });
    assert.deepEqual({ ...(await store.getSecret('a'))?.values }, { v: '1' });
  } finally {
    reader.exec('COMMIT');
    reader.close();
    writer.close();
    await store.close();
  }
});

test('D12 store: a failed sync of a batch that held a write and a refusal: the write is unknown (committed), the refusal not applied', async () => {
  const m = manualSync();
  const store = await openedStore(m);
  await putSynced(store, m, 'apps/x', { v: '1' });
  const write = store.putSecret('apps/y', { v: '2' });
  const refusal = store.putSecret('apps/x', { v: '3' }, { cas: 0 }); // the same batch
  await syncStarted(m);
  m.pending.shift()!(Object.assign(new Error('EIO'), { code: 'EIO' }));
  await assert.rejects(write, (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.outcome === 'unknown');
  await assert.rejects(refusal, (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.outcome === 'not_applied');
  await store.close();
});
