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

test('outside a request the pool\'s own connect timeout applies (start-up, background work)', async () => {
  const store = new PostgresStore({ connectionString: url, connectTimeoutMs: 200 });
  try {
    await assert.rejects(store.getSystem('x'), (e: unknown) => e instanceof StoreError && e.failure === 'unreachable' && e.outcome === 'not_applied');
  } finally {
    await store.close();
  }
});
