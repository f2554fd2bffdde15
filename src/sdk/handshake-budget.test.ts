/**
 * A client opening many connections at once against the server's per-address handshake budget
 * (the server closes the oldest handshake of an address past its share, so that
 * unauthenticated clients cannot hold its slots):
 * - over real mTLS (the server in a worker thread, so handshakes overlap), 64 writes at once from one client (a pool of 64 connections) against a
 *   server whose budget is twice the client's handshake limit all succeed, each sent once:
 *   the client keeps at most that many handshakes in flight per server (dial-gate.ts);
 * - a dial the server closed before the socket reached HTTP (nothing sent) is tried again on
 *   the same URL, writes included, at most twice; a connection that broke after it was handed
 *   to HTTP (the write may have arrived) is never re-sent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { createMtlsDispatcher, MTLS_DEFAULTS } from '../spiffe/tls/index.js';
import { DialFailedError } from '../spiffe/tls/dial.js';
import { authorizeIf } from '../spiffe/authorize.js';
import { StaticX509Source } from '../spiffe/source.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { NexusClient } from './client.js';
import type { HttpDispatcher, HttpRequest } from './transport.js';

const TD = 'budget.test';
let ca: TestCa;
let source: StaticX509Source;
let server: Worker;
let port = 0;
/**
 * The server's budget in these tests (the default is 32): twice the client's own limit, since
 * a TLS 1.3 client is done one flight before the server is, so up to twice its limit can be
 * open on the server side at once. Young sockets of one address are spared up to
 * max(2 × this, total / 2) = 32 with a total of {@link SERVER_TOTAL}: a pool of 64 opened at
 * once without the client's limit would lose its oldest.
 */
const SERVER_BUDGET = 16;
const SERVER_TOTAL = 64;

/** The server's requests so far (it runs in a worker thread: see the module comment). */
function served(): Promise<number> {
  return new Promise((resolve) => {
    server.once('message', (m: { requests: number }) => resolve(m.requests));
    server.postMessage('count');
  });
}

before(async () => {
  ca = await createCa(TD);
  source = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca));
  server = new Worker(new URL('../../test/helpers/mtls-server.worker.js', import.meta.url), {
    workerData: { td: TD, caKey: ca.keyPkcs8, caPem: ca.pem, maxHandshakesPerSource: SERVER_BUDGET, maxHandshakes: SERVER_TOTAL },
  });
  port = await new Promise<number>((resolve, reject) => {
    server.once('message', (m: { port: number }) => resolve(m.port));
    server.once('error', reject);
  });
});

after(async () => {
  server.postMessage('close');
  await new Promise((resolve) => server.once('exit', resolve));
});

for (const http of ['native', 'undici'] as const) {
  test(`${http}: 64 writes at once on a fresh pool of 64 connections all succeed, each sent once`, async () => {
    assert.ok(2 * MTLS_DEFAULTS.clientHandshakesPerTarget <= SERVER_BUDGET);
    const url = `https://127.0.0.1:${port}`;
    const c =
      http === 'native'
        ? await NexusClient.connect({ urls: [url], source, env: { SPIKE_TRUST_ROOT_NEXUS: TD, SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST: '64' }, timeoutMs: 60_000 })
        : NexusClient.create({
          urls: [url],
          timeoutMs: 60_000,
          dispatcher: createMtlsDispatcher({ source, connections: 64, authorizeServer: authorizeIf((id) => id.toString() === `spiffe://${TD}/spike/nexus`) }),
        });
    try {
      const before = await served();
      const results = await Promise.allSettled(Array.from({ length: 64 }, (_, w) => c.putSecret(`budget/w${w}`, { k: 'v' })));
      const failed = results.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 0, `failed: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).slice(0, 3).join('; ')}`);
      assert.equal((await served()) - before, 64, 'each write reached the server exactly once');
    } finally {
      await c.close();
    }
  });
}

/** A dispatcher that fails its first `failures` requests with `error()`, then answers `{}`. */
function scripted(failures: number, error: () => Error): HttpDispatcher & { calls: number } {
  const d = {
    calls: 0,
    async request(_r: HttpRequest): Promise<{ statusCode: number; body: Readable }> {
      d.calls++;
      if (d.calls <= failures) throw error();
      return { statusCode: 200, body: Readable.from([Buffer.from('{}')]) };
    },
    async close(): Promise<void> { /* nothing held */ },
  };
  return d;
}

const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

test('a write whose dial the server closed (nothing sent) is sent again to the same URL, at most twice', async () => {
  const twice = scripted(2, () => new DialFailedError(reset()));
  const c = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: twice, timeoutMs: 10_000 });
  await c.putSecret('a/b', { k: 'v' });
  assert.equal(twice.calls, 3);

  const always = scripted(99, () => new DialFailedError(reset()));
  const d = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: always, timeoutMs: 10_000 });
  await assert.rejects(d.putSecret('a/b', { k: 'v' }), (e: unknown) => {
    const err = e as { code?: string; attempts?: Array<{ failure: { class: string } }> };
    assert.equal(err.code, 'net_peer_connection');
    assert.deepEqual(err.attempts?.map((a) => a.failure.class), ['connection_closed', 'connection_closed', 'connection_closed']);
    return true;
  });
  assert.equal(always.calls, 3);
});

test('a write whose connection broke after it was handed to HTTP is never re-sent', async () => {
  const d = scripted(1, reset);
  const c = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: d, timeoutMs: 10_000 });
  await assert.rejects(c.putSecret('a/b', { k: 'v' }), { code: 'net_peer_connection' });
  assert.equal(d.calls, 1);
});

test('a refused dial on the only URL is not a closed handshake: with retryUnavailableMs 0 it is not tried again', async () => {
  const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const d = scripted(1, () => new DialFailedError(refused()));
  const c = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: d, timeoutMs: 10_000, retryUnavailableMs: 0 });
  await assert.rejects(c.putSecret('a/b', { k: 'v' }), { code: 'net_peer_connection' });
  assert.equal(d.calls, 1);
  // By default (retryUnavailableMs 5 s) it is tried again after a pause (unavailable-retry.test.ts).
  const again = scripted(1, () => new DialFailedError(refused()));
  await NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: again, timeoutMs: 10_000 }).putSecret('a/b', { k: 'v' });
  assert.equal(again.calls, 2);
});

test('a caller that aborts during the pause before the same-URL retry gets its own reason', async () => {
  const ac = new AbortController();
  const reason = new Error('caller gave up');
  const d = scripted(99, () => {
    setTimeout(() => ac.abort(reason), 5); // the first attempt fails; the caller gives up during the 20-40 ms pause
    return new DialFailedError(reset());
  });
  const c = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: d, timeoutMs: 10_000 });
  await assert.rejects(c.putSecret('a/b', { k: 'v' }, { signal: ac.signal }), (e: unknown) => e === reason);
  assert.equal(d.calls, 1);
});
