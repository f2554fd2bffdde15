/**
 * The postgres settings reach the pool through `openStore` (issue 18: the connect timeout
 * and the connection lifetime were dropped on the way) and one request deadline covers every
 * database call of a request. Against a black-holed server (a TCP listener that accepts and
 * never answers): no database needed. Pool size and lifetime against a real server:
 * test/e2e/ha-degrade.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { openStore } from '../open.js';
import { runWithDeadline } from '../../lib/deadline.js';
import { StoreError } from '../types.js';
import { PostgresStore } from './store.js';
import { isDeadlineTimerError } from './errors.js';

let hole: net.Server;
let url: string;
const sockets = new Set<net.Socket>();

before(async () => {
  hole = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined); // accepted, never answered
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
  url = `postgresql://spike@127.0.0.1:${(hole.address() as net.AddressInfo).port}/spike`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => hole.close(() => r()));
});

test('SPIKE_NEXUS_DB_CONNECT_TIMEOUT reaches the pool through openStore: a black-holed connect gives up after it', async () => {
  const t0 = Date.now();
  await assert.rejects(openStore({ kind: 'postgres', connectionString: url, connectTimeoutMs: 300 }),
    (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable' && e.failure === 'unreachable');
  const ms = Date.now() - t0;
  assert.ok(ms >= 250 && ms < 3000, `gave up after ${ms} ms (default would be 5000)`);
});

test('one deadline per request: two calls in a row wait the deadline once, then fail at once, not applied', async () => {
  const store = new PostgresStore({ connectionString: url, connectTimeoutMs: 10_000, operationTimeoutMs: 10_000 });
  try {
    const t0 = Date.now();
    const errors = await runWithDeadline(400, async () => {
      const out: unknown[] = [];
      for (let i = 0; i < 2; i++) await store.getSystem('x').catch((e: unknown) => out.push(e));
      return out;
    });
    const ms = Date.now() - t0;
    assert.equal(errors.length, 2);
    for (const e of errors) {
      assert.ok(e instanceof StoreError && e.code === 'store_unavailable');
      assert.equal(e.failure, 'timeout');
      assert.equal(e.outcome, 'not_applied');
    }
    assert.ok(ms >= 350 && ms < 2000, `two calls took ${ms} ms with a 400 ms deadline`);
  } finally {
    // The black hole drops its connections first: close() otherwise waits for the pool's
    // connects still pending behind their 10 s connect timeout (10 s of idle test time).
    for (const s of sockets) s.destroy();
    await store.close();
  }
});

/**
 * A server that completes PostgreSQL's start-up (AuthenticationOk, ReadyForQuery) and then
 * never answers a statement: the client's read timeout, set to the request's deadline, ends it.
 */
async function silentAfterStartup(): Promise<{ url: string; close(): Promise<void> }> {
  const conns = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    conns.add(s);
    s.on('error', () => undefined);
    s.once('data', () => {
      // The StartupMessage (no SSL asked: the pg client's default): authentication ok, ready.
      s.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]));
      s.on('data', () => undefined);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `postgresql://spike@127.0.0.1:${(srv.address() as net.AddressInfo).port}/spike`,
    close: async () => {
      for (const s of conns) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

test('a statement that outlives the request deadline fails as "timed out", by the read timeout set to that deadline', async () => {
  const silent = await silentAfterStartup();
  const store = new PostgresStore({ connectionString: silent.url, connectTimeoutMs: 10_000, operationTimeoutMs: 10_000 });
  try {
    const e = await runWithDeadline(400, () => store.getSystem('x').then(() => undefined, (err: unknown) => err));
    assert.ok(e instanceof StoreError && e.code === 'store_unavailable', String(e));
    assert.equal(e.failure, 'timeout');
    assert.equal(e.outcome, 'not_applied');
    // The cause is the pg client's read timeout, recognised as the deadline's own timer (so the
    // cause stays "timeout" even when Node runs that timer before Date.now() reaches the deadline).
    assert.ok(isDeadlineTimerError(e.cause), `cause not recognised as the deadline timer: ${String((e.cause as Error | undefined)?.message)}`);
  } finally {
    await silent.close();
    await store.close();
  }
});

test('outside a request the pool\'s own connect timeout applies (start-up, background work)', async () => {
  const store = new PostgresStore({ connectionString: url, connectTimeoutMs: 200 });
  try {
    await assert.rejects(store.getSystem('x'), (e: unknown) => e instanceof StoreError && e.failure === 'unreachable' && e.outcome === 'not_applied');
  } finally {
    await store.close();
  }
});
