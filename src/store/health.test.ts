/**
 * Store failure causes: how driver errors are named (sqlite file errors, PostgreSQL codes),
 * the health tracker's bounded log volume and recovery, the `storeFailure` accessor, and
 * that the API sentences match the protocol's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../lib/log.js';
import { STORE_FAILURE_MESSAGE, storeFailureFromMessage } from '../protocol/index.js';
import { StoreHealth, storeFailure, storeFailureText } from './health.js';
import { MemoryStore } from './memory.js';
import { pgToStoreError } from './postgres/store.js';
import { connectWithin, deadlineTimerError } from './postgres/errors.js';
import { runWithDeadline } from '../lib/deadline.js';
import { toStoreError } from './sqlite/file.js';
import { StoreError, type StoreFailureCause } from './types.js';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = createLogger({ component: 'test', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  return { logger, lines: () => out.join('').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function driverError(code: string): Error {
  return Object.assign(new Error('driver text that must not be logged'), { code });
}

test('sqlite and file-system codes name their cause', () => {
  const cases: Array<[string, StoreFailureCause | undefined]> = [
    ['SQLITE_FULL', 'disk_full'], ['ENOSPC', 'disk_full'], ['EDQUOT', 'disk_full'],
    ['SQLITE_READONLY', 'read_only'], ['SQLITE_READONLY_DBMOVED', 'read_only'], ['EROFS', 'read_only'], ['EACCES', 'read_only'],
    ['SQLITE_IOERR_WRITE', 'io_error'], ['EIO', 'io_error'], ['SQLITE_ERROR', undefined],
  ];
  for (const [code, cause] of cases) {
    const e = toStoreError(driverError(code));
    assert.equal(e.code, 'store_unavailable', code);
    assert.equal(e.failure, cause, code);
  }
  assert.equal(toStoreError(driverError('SQLITE_CORRUPT')).failure, 'integrity');
  assert.equal(toStoreError(driverError('SQLITE_BUSY')).failure, undefined);
});

test('PostgreSQL and socket codes name their cause', () => {
  const cases: Array<[string, StoreFailureCause | undefined]> = [
    ['53100', 'disk_full'], ['25006', 'read_only'], ['ECONNREFUSED', 'unreachable'], ['ENOTFOUND', 'unreachable'],
    ['08006', 'unreachable'], ['57P01', 'unreachable'], ['58030', 'io_error'], ['57014', 'timeout'], ['53300', undefined],
  ];
  for (const [code, cause] of cases) assert.equal(pgToStoreError(driverError(code)).failure, cause, code);
  assert.equal(pgToStoreError(new Error('Connection terminated unexpectedly')).failure, 'unreachable');
  assert.equal(pgToStoreError(driverError('40001')).code, 'store_busy');
});

test('postgres: a timer set to the request deadline is a timeout even when it fires before the clock reaches the deadline', async () => {
  // Node runs timers against the loop's cached clock, so under load they fire a few ms
  // early by Date.now(); the cause must still be "timed out", never "unreachable".
  await runWithDeadline(60_000, async () => {
    assert.equal(pgToStoreError(deadlineTimerError(new Error('Query read timeout'))).failure, 'timeout');
    assert.equal(pgToStoreError(new Error('Query read timeout')).failure, 'unreachable', 'a read timeout not set from the deadline');
    const neverConnects = { connect: () => new Promise<never>(() => undefined) } as unknown as Parameters<typeof connectWithin>[0];
    const e = await connectWithin(neverConnects, 5).then(() => assert.fail('connected'), (err: unknown) => err);
    assert.equal(pgToStoreError(e).failure, 'timeout');
    assert.equal(pgToStoreError(new Error('timeout exceeded when trying to connect')).failure, 'unreachable', "the pool's own connect timeout");
  });
});

test('an unspecific SQLITE_IOERR is diagnosed from the folder: read-only when it cannot be written', { skip: process.getuid?.() === 0 ? 'root writes anywhere' : false }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-health-'));
  try {
    fs.chmodSync(dir, 0o500);
    assert.equal(toStoreError(driverError('SQLITE_IOERR_WRITE'), dir).failure, 'read_only');
  } finally {
    fs.chmodSync(dir, 0o700);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('health: one line when a cause starts, at most one per interval while it lasts, one on recovery', () => {
  const { logger, lines } = capture();
  let now = 1_000_000;
  const h = new StoreHealth(logger, { intervalMs: 30_000, now: () => now });
  const full = new StoreError('store_unavailable', { cause: driverError('SQLITE_FULL'), failure: 'disk_full' });
  for (let i = 0; i < 500; i++) {
    h.failed(full);
    now += 100; // 500 failures over 50 s
  }
  const l = lines();
  assert.equal(l.length, 2, JSON.stringify(l));
  assert.equal(l[0]!['level'], 'error');
  assert.equal(l[0]!['cause'], 'disk_full');
  assert.equal(l[0]!['code'], 'SQLITE_FULL');
  assert.match(String(l[0]!['msg']), /^store unavailable: disk full: free space/);
  assert.equal(l[1]!['failures'], 301);
  assert.ok(!JSON.stringify(l).includes('driver text'));
  const cur = h.current();
  assert.equal(cur?.cause, 'disk_full');
  assert.equal(cur?.text, 'store unavailable: disk full');
  assert.equal(cur?.failures, 500);
  // reads still work on a full disk: they do not clear it; a write does
  h.succeeded('read');
  assert.equal(h.current()?.cause, 'disk_full');
  h.succeeded('write');
  assert.equal(h.current(), null);
  const rec = lines()[2]!;
  assert.equal(rec['event'], 'store_recovered');
  assert.equal(rec['level'], 'warn');
  assert.equal(rec['failures'], 500);
});

test('health: a new cause is logged at once; a read clears only unreachable; errors without cause are ignored', () => {
  const { logger, lines } = capture();
  const h = new StoreHealth(logger);
  h.failed(new StoreError('store_cas_mismatch'));
  h.failed(new StoreError('store_integrity')); // one record: alarmed by the API, not a store state
  assert.equal(h.current(), null);
  h.failed(new StoreError('store_unavailable', { cause: driverError('ECONNREFUSED'), failure: 'unreachable' }));
  h.failed(new StoreError('store_unavailable', { cause: driverError('SQLITE_READONLY'), failure: 'read_only' }));
  assert.equal(lines().length, 2);
  assert.equal(lines()[1]!['previous'], 'unreachable');
  h.failed(new StoreError('store_unavailable', { failure: 'unreachable' }));
  h.succeeded('read');
  assert.equal(h.current(), null);
});

test('health: a failure whose fault wrote its own alarm line (a stopped store) is recorded without a line, however long it lasts', () => {
  let t = 0;
  const { logger, lines } = capture();
  const h = new StoreHealth(logger, { intervalMs: 1000, now: () => t });
  for (let i = 0; i < 50; i++, t += 100) h.failed(new StoreError('store_unavailable', { cause: driverError('EIO'), failure: 'io_error', alarmed: true }));
  assert.deepEqual(lines(), []);
  assert.equal(h.current()?.cause, 'io_error');
  assert.equal(h.current()?.failures, 50);
  assert.equal(h.current()?.stopped, true);
  // Stopped stays stopped whatever fails next (until a restart); an ordinary failure is not stopped.
  h.failed(new StoreError('store_unavailable', { cause: driverError('SQLITE_FULL'), failure: 'disk_full' }));
  assert.equal(h.current()?.stopped, true);
  const fresh = new StoreHealth(capture().logger);
  fresh.failed(new StoreError('store_unavailable', { cause: driverError('EIO'), failure: 'io_error' }));
  assert.equal(fresh.current()?.stopped, false);
});

test('storeFailure reads a persistent store\'s tracker; memory stores have none', () => {
  assert.equal(storeFailure(new MemoryStore()), null);
});

test('the store\'s sentences are the protocol\'s, and clients map them back', () => {
  for (const [cause, msg] of Object.entries(STORE_FAILURE_MESSAGE)) {
    assert.equal(storeFailureText(cause as StoreFailureCause), msg);
    assert.equal(storeFailureFromMessage(msg), cause);
  }
  assert.equal(storeFailureFromMessage('store unavailable'), undefined);
  assert.equal(storeFailureFromMessage(42), undefined);
});
