/**
 * WAL checkpoints on a worker thread (checkpointer.ts): the store's own connection never
 * checkpoints (`wal_autocheckpoint=0`), the worker copies the log into the database file once
 * it is long enough, a failed checkpoint stops the store and keeps the log whole (a full disk,
 * which is waited out instead, is tested on a real tmpfs in test/e2e/store-failure-causes.test.ts),
 * and a worker that cannot run hands the checkpoints back to the main thread. Real files, real
 * worker thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { SqliteStore } from './store.js';
import type { SyncFile } from './wal-sync.js';
import { Checkpointer, checkpointErrorKind } from './checkpointer.js';
import { openDatabase } from './file.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { captureLogger, waitFor } from '../../../test/helpers/mtls-harness.js';

const roots: RootKey[] = [];
after(() => {
  for (const r of roots) r.destroy();
});

/** Log frames and how many of them are in the database file, asked through a connection of the test's own. */
function walState(file: string): { log: number; checkpointed: number } {
  const db = new Database(file, { fileMustExist: true });
  try {
    return (db.pragma('wal_checkpoint(NOOP)') as Array<{ log: number; checkpointed: number }>)[0]!;
  } finally {
    db.close();
  }
}

interface StoreOpts { frames?: number; statement?: string; busyTimeoutMs?: number; logger?: ReturnType<typeof captureLogger>['logger']; file?: string; root?: RootKey; syncFile?: SyncFile }

async function openStore(opts: StoreOpts = {}): Promise<SqliteStore> {
  const root = opts.root ?? RootKey.generate();
  roots.push(root);
  const checkpoints = { ...(opts.frames !== undefined ? { frames: opts.frames } : {}), ...(opts.statement !== undefined ? { statement: opts.statement } : {}) };
  const store = new SqliteStore({
    file: opts.file ?? path.join(tempDir('spike-ckpt-'), 'spike.db'), checkpoints, logger: opts.logger,
    ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
    ...(opts.syncFile !== undefined ? { syncFile: opts.syncFile } : {}),
  });
  await store.unlock(root);
  return store;
}

test('checkpoints: the store connection does not checkpoint; the worker copies the log once it is long enough', async () => {
  const store = await openStore({ frames: 20 });
  // Secrets of 2 KiB each: every write adds pages to the log.
  for (let i = 0; i < 60; i++) await store.putSecret(`app/s${i}`, { v: 'x'.repeat(2048) });
  assert.equal(store.stats().checkpoints?.started, true, 'the worker was started');
  await waitFor(() => (store.stats().checkpoints?.checkpoints ?? 0) >= 1, 'a checkpoint (the thread starts on the first)');
  const cp = store.stats().checkpoints;
  assert.ok(cp !== undefined && cp.checkpoints >= 1, `the worker checkpointed (${JSON.stringify(cp)})`);
  assert.equal(cp.fallback, false);
  // Writes went on after the last checkpoint: the log restarted and is short again.
  const s = walState(store.file);
  assert.ok(s.log - s.checkpointed < 60, `log caught up: ${JSON.stringify(s)}`);
  for (let i = 0; i < 60; i++) assert.equal((await store.getSecret(`app/s${i}`))?.values['v']?.length, 2048);
  await store.close();
  // Closed last, the store's connection folds the log into the file: a copy of the file alone reads back.
  const copy = path.join(tempDir('spike-ckpt-copy-'), 'copy.db');
  fs.copyFileSync(store.file, copy);
  const db = new Database(copy, { readonly: true });
  try {
    assert.equal((db.prepare('SELECT count(*) AS n FROM secrets').get() as { n: number }).n >= 60, true);
  } finally {
    db.close();
  }
});

test('checkpoints: under a steady stream of writes the log is wholly copied and starts again; it does not grow without bound', async () => {
  const store = await openStore({ frames: 50 });
  let stop = false;
  let writes = 0;
  const writer = async (k: number): Promise<void> => {
    for (let i = 0; !stop; i++, writes++) await store.putSecret(`app/w${k}/${i % 20}`, { v: 'z'.repeat(2048) });
  };
  const writers = Array.from({ length: 8 }, (_, k) => writer(k));
  // The log file's size is its high-water mark; the first checkpoint waits for the thread to start.
  await waitFor(() => (store.stats().checkpoints?.checkpoints ?? 0) >= 3, 'three checkpoints');
  const first = { writes, pages: fs.statSync(`${store.file}-wal`).size / 4120 };
  await waitFor(() => (store.stats().checkpoints?.checkpoints ?? 0) >= 13 && writes - first.writes >= 400, 'ten more checkpoints and 400 more writes');
  stop = true;
  await Promise.all(writers);
  // Every write adds pages: a log never started again would have grown by hundreds of them.
  const pages = fs.statSync(`${store.file}-wal`).size / 4120;
  assert.ok(pages - first.pages < 100, `the log file stayed at ${Math.round(first.pages)} pages, now ${Math.round(pages)}, after ${writes - first.writes} more writes`);
  await store.close();
});

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/checkpoint-writer.child.js');

/** What a writer child acknowledged and tried, per path (see checkpoint-writer.child.ts). */
interface Ledger { acked: Map<string, string>; tried: Map<string, Set<string>> }

/**
 * Runs the writer child on `file` (its extra arguments after the file); `onCheckpoints` may kill
 * it. Once it ended, its ledger file (what it tried and acknowledged, in order) is applied to
 * `ledger`. Resolves with how it ended.
 */
function runWriter(file: string, root: RootKey, args: string[], ledger: Ledger, onCheckpoints?: (n: number, kill: () => void) => void): Promise<{ signal: NodeJS.Signals | null; code: number | null; closed: boolean; err: string }> {
  const notes = path.join(tempDir('spike-ckpt-ledger-'), 'ledger.jsonl');
  const proc = spawn(process.execPath, [CHILD, file, notes, ...args], { env: { ...process.env, SPIKE_TEST_ROOT_HEX: Buffer.from(root.bytes()).toString('hex') }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let rest = '';
  let closed = false;
  proc.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
  proc.stdout.on('data', (c: Buffer) => {
    const lines = (rest + c.toString('utf8')).split('\n');
    rest = lines.pop()!;
    for (const l of lines) {
      const m = JSON.parse(l) as { checkpoints?: number; closed?: boolean };
      if (m.closed === true) closed = true;
      else if (m.checkpoints !== undefined) onCheckpoints?.(m.checkpoints, () => proc.kill('SIGKILL'));
    }
  });
  return new Promise((resolve) => proc.on('close', (code, signal) => {
    let text = '';
    try {
      text = fs.readFileSync(notes, 'utf8');
    } catch (e) {
      // The child died before it opened its ledger (a load error): its stderr says why.
      err += `\nno ledger: ${(e as Error).message}`;
    }
    // Whole lines only: a kill can cut the last line short (Linux checks for a fatal signal
    // between the pages of one write), and a cut line never ends with its closing brace.
    for (const l of text.split('\n').filter((x) => x.endsWith('}'))) {
      const m = JSON.parse(l) as { ack?: string; try?: string; value: string };
      if (m.try !== undefined) ledger.tried.set(m.try, (ledger.tried.get(m.try) ?? new Set()).add(m.value));
      else if (m.ack !== undefined) {
        ledger.acked.set(m.ack, m.value);
        ledger.tried.delete(m.ack);
      }
    }
    resolve({ code, signal, closed, err });
  }));
}

/**
 * Every acknowledged write reads back: its value, or a later one tried and not acknowledged (in
 * flight when the writer stopped). At least `min` paths were acknowledged.
 */
async function checkLedger(store: SqliteStore, ledger: Ledger, min: number): Promise<void> {
  assert.ok(ledger.acked.size >= min, `${ledger.acked.size} paths acknowledged, fewer than ${min}`);
  // A value's first three fields name its writer process, writer and round (checkpoint-writer.child.ts).
  const id = (x: string | undefined): string => String(x).split('-').slice(0, 3).join('-');
  for (const [p, v] of ledger.acked) {
    const got = (await store.getSecret(p))?.values['v'];
    assert.ok(got === v || (got !== undefined && ledger.tried.get(p)?.has(got) === true), `${p}: the last acknowledged value (${id(v)}) or a later unacknowledged one, got ${id(got)}`);
  }
}

test('checkpoints: SIGKILL while the worker checkpoints under 8 writers: every acknowledged write reads back, integrity ok', { timeout: 120_000 }, async () => {
  const file = path.join(tempDir('spike-ckpt-kill-'), 'spike.db');
  const root = RootKey.generate();
  roots.push(root);
  const ledger: Ledger = { acked: new Map(), tried: new Map() };
  for (let round = 0; round < 3; round++) {
    // Killed at a different moment each round, once the worker has checkpointed a few times.
    const target = 3 + round * 4;
    const end = await runWriter(file, root, ['20'], ledger, (n, kill) => { if (n >= target) kill(); });
    assert.equal(end.signal, 'SIGKILL', end.err);
  }
  const store = await openStore({ file, root });
  await checkLedger(store, ledger, 21);
  await store.close();
  const db = new Database(file, { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
});

test('checkpoints: below the threshold no worker starts, and the store connection never checkpoints by itself (past SQLite\'s 1,000 pages)', async () => {
  const store = await openStore({ frames: 100_000 });
  for (let i = 0; i < 400; i++) await store.putSecret(`app/s${i}`, { v: 'y'.repeat(3000) });
  assert.deepEqual(store.stats().checkpoints, { checkpoints: 0, busy: 0, full: 0, failures: 0, fallback: false, started: false });
  const s = walState(store.file);
  assert.ok(s.log > 1000 && s.checkpointed === 0, `nothing checkpointed: ${JSON.stringify(s)}`);
  await store.close();
});

test('checkpoints: a failed checkpoint stops the store (one ERROR alarm, writes and reads refused) and is not tried again', async () => {
  const { logger, lines } = captureLogger();
  const store = await openStore({ frames: 1, statement: "SELECT json('not json')", logger });
  // Writes until the first checkpoint has failed (a write may be the first to be refused).
  const acked: string[] = [];
  for (let i = 0; store.stats().checkpoints!.failures === 0; i++) {
    try {
      await store.putSecret(`app/f${i}`, { v: `value-${i}` });
      acked.push(`app/f${i}`);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'store_unavailable');
      break;
    }
    if (i > 2_000) throw new Error('no checkpoint failed');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(acked.length > 0);
  await assert.rejects(store.putSecret('app/after', { v: 'x' }), (e: unknown) => (e as { code?: string }).code === 'store_unavailable');
  await assert.rejects(store.getSecret(acked[0]!), (e: unknown) => (e as { code?: string }).code === 'store_unavailable');
  const alarms = lines().filter((l) => l['alarm'] === 'checkpoint_failed');
  assert.equal(alarms.length, 1, JSON.stringify(lines()));
  assert.equal(alarms[0]!['level'], 'error');
  assert.equal(store.stats().checkpoints!.failures, 1, 'not tried again');
  await store.close();
  assert.ok(fs.statSync(`${store.file}-wal`).size > 0, 'the log is kept at close');
});

test('checkpoints: a checkpoint that fails on the disk whose log sync already failed is not a second fault: one ERROR line, the checkpoint\'s at WARN', async () => {
  const { logger, lines } = captureLogger();
  let failing = false;
  const syncFile: SyncFile = (fd, done) => (failing ? setTimeout(() => done(Object.assign(new Error('EIO'), { code: 'EIO' })), 1) : fs.fdatasync(fd, done));
  const store = await openStore({ frames: 1, statement: "SELECT json('not json')", logger, syncFile });
  failing = true;
  for (let i = 0; i < 5; i++) await store.putSecret(`app/s${i}`, { v: 'x'.repeat(4096) }).catch(() => undefined);
  for (let i = 0; i < 200 && store.stats().checkpoints!.failures === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const errors = lines().filter((l) => l['level'] === 'error');
  assert.deepEqual(errors.map((l) => l['alarm']), ['wal_sync_failed'], JSON.stringify(lines()));
  assert.equal(store.stats().checkpoints!.failures, 1, 'the checkpoint in flight failed too');
  assert.ok(lines().some((l) => l['level'] === 'warn' && l['after'] === 'wal_sync_failed'), 'the checkpoint\'s failure is still said, at WARN');
  await store.close();
});

test('checkpoints: after a failed checkpoint the process closes the store and exits; the log is kept whole, the next process counts none of it as copied and serves every write', { timeout: 120_000 }, async () => {
  const file = path.join(tempDir('spike-ckpt-fail-'), 'spike.db');
  const root = RootKey.generate();
  roots.push(root);
  const ledger: Ledger = { acked: new Map(), tried: new Map() };
  // The worker's statement fails only once 40 secret versions are committed: the store syncs and
  // acknowledges one group commit before it starts the next, so by then earlier writes were
  // acknowledged, and the test has acknowledged writes to look for (a statement that failed at
  // once, before any acknowledgement, left none in a loaded run).
  const failLater = "SELECT CASE WHEN (SELECT count(*) FROM secret_versions) >= 40 THEN json('not json') END";
  const end = await runWriter(file, root, ['1', failLater], ledger);
  assert.ok(end.code === 0 && end.closed, `the child closed its store and exited: ${end.err}`);
  assert.ok(fs.statSync(`${file}-wal`).size > 0, 'the log was not folded into the file at close or exit');
  // The first process to open the file rebuilds the log's index: nothing counted as copied.
  const s = walState(file);
  assert.ok(s.log > 0 && s.checkpointed === 0, `a new process sees the whole log uncopied: ${JSON.stringify(s)}`);
  const store = await openStore({ file, root });
  await checkLedger(store, ledger, 1);
  await store.close();
});

test('checkpoints: while the checkpoint thread holds the write lock, writes wait past the busy timeout instead of failing store_busy', { timeout: 60_000 }, async () => {
  // The worker's statement takes the write lock for a while (a write of a counted value).
  const slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500000) INSERT OR REPLACE INTO system (key, value) SELECT 'ckpt-test', CAST(count(*) AS BLOB) FROM c RETURNING key";
  const store = await openStore({ frames: 1, statement: slow, busyTimeoutMs: 50 });
  let slowest = 0;
  for (let i = 0; (store.stats().checkpoints?.checkpoints ?? 0) < 2; i++) {
    const t = performance.now();
    await store.putSecret(`app/l${i % 10}`, { v: 'w'.repeat(500) });
    slowest = Math.max(slowest, performance.now() - t);
    if (i > 20_000) throw new Error('no checkpoint finished');
  }
  assert.ok(slowest > 50, `a write waited for the checkpoint's lock longer than the busy timeout (${Math.round(slowest)} ms)`);
  await store.close();
});

/** Whether this process holds a POSIX lock on `file` (/proc/locks: pid and inode). */
function holdsLock(file: string): boolean {
  const ino = fs.statSync(file).ino;
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    const at = f.findIndex((x) => x === 'POSIX');
    return at >= 0 && Number(f[at + 3]) === process.pid && Number(f[at + 4]?.split(':')[2]) === ino;
  });
}

/** A main-thread checkpoint after a hand-back: the log wholly copied, an error not ignored. */
function checkpointsHere(db: ReturnType<typeof openDatabase>, cp: Checkpointer): void {
  const before = cp.stats().checkpoints;
  db.prepare('INSERT INTO t VALUES (randomblob(4096))').run();
  cp.afterCommit();
  assert.equal(cp.stats().checkpoints, before + 1, 'checkpointed on the main thread');
  const r = (db.pragma('wal_checkpoint(NOOP)') as Array<{ log: number; checkpointed: number }>)[0]!;
  assert.equal(r.checkpointed, r.log);
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, 'not SQLite\'s automatic checkpoints (they ignore errors)');
}

test('checkpoints: a worker that dies after it started hands checkpoints back to the main thread, with a WARN line; the process keeps its lock on the file', async () => {
  const file = path.join(tempDir('spike-ckpt-died-'), 'spike.db');
  const db = openDatabase(file, 1000, 'NORMAL');
  db.exec('CREATE TABLE t (v BLOB)');
  const { logger, lines } = captureLogger();
  const workers: Worker[] = [];
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function capture(this: Worker, ...args: Parameters<Worker['postMessage']>): void {
    if (!workers.includes(this)) workers.push(this);
    post.apply(this, args);
  };
  try {
    const cp = new Checkpointer(db, { frames: 1, logger });
    db.prepare('INSERT INTO t VALUES (randomblob(4096))').run();
    cp.afterCommit();
    await waitFor(() => cp.stats().checkpoints === 1, 'a first checkpoint');
    assert.equal(workers.length, 1);
    assert.ok(holdsLock(file), 'SQLite holds its lock on the file');
    await workers[0]!.terminate();
    await waitFor(() => cp.stats().fallback, 'the hand-back');
    // Closing any descriptor of the file would have dropped every lock the process holds on it.
    assert.ok(holdsLock(file), 'the lock outlives the worker');
    assert.ok(lines().some((l) => String(l['msg']).includes('checkpoints run on the main thread again') && l['level'] === 'warn'), JSON.stringify(lines()));
    checkpointsHere(db, cp);
    await cp.close();
  } finally {
    Worker.prototype.postMessage = post;
    db.close();
  }
});

test('checkpoints: a worker that fails at start hands checkpoints back to the main thread, with a WARN line', async () => {
  const file = path.join(tempDir('spike-ckpt-dead-'), 'spike.db');
  const db = openDatabase(file, 1000, 'NORMAL');
  db.exec('CREATE TABLE t (v BLOB)');
  const { logger, lines } = captureLogger();
  const cp = new Checkpointer(db, { frames: 1, logger, statement: 'this is not SQL' });
  assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0);
  db.prepare('INSERT INTO t VALUES (randomblob(4096))').run();
  cp.afterCommit();
  await waitFor(() => cp.stats().fallback, 'the hand-back');
  assert.ok(lines().some((l) => String(l['msg']).includes('checkpoints run on the main thread again') && l['level'] === 'warn'), JSON.stringify(lines()));
  checkpointsHere(db, cp);
  assert.equal(lines().filter((l) => String(l['msg']).includes('main thread again')).length, 1, 'one line');
  await cp.close();
  db.close();
});

test('checkpoints: which errors are waited out (busy lock, full disk) and which stop the store (a failed sync above all)', () => {
  const dir = tempDir('spike-ckpt-kind-'); // a volume with room
  for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED']) assert.equal(checkpointErrorKind(code, dir), 'busy', code);
  // A write refused for lack of space: the copy stopped before anything counted as copied.
  assert.equal(checkpointErrorKind('SQLITE_FULL', dir), 'full');
  // A failed sync may have dropped pages a retry would count as copied; a failed write on a
  // volume with room is an I/O error, not a full disk; the worker's own fdatasync reports errno codes.
  for (const code of ['SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR', 'SQLITE_IOERR_TRUNCATE', 'ENOSPC', 'EIO', 'EDQUOT', 'SQLITE_CORRUPT', 'error']) {
    assert.equal(checkpointErrorKind(code, dir), 'fatal', code);
  }
});
