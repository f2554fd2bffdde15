/**
 * While Nexus is unavailable (every URL refuses the connection, or answers 503 with nothing
 * applied), a call goes round again for `retryUnavailableMs` (default 5 s) within its
 * deadline; a write is retried too, because nothing was applied. Real mTLS servers from the
 * test harness; "down" is a port with nothing listening, "back" is a server started on that
 * same port.
 */
import 'reflect-metadata';
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createMtlsPki, startServer, type Harness, type MtlsPki } from '../../test/helpers/mtls-harness.js';
import { freePort } from '../../test/helpers/ports.js';
import { StaticX509Source } from '../spiffe/source.js';
import { NexusClient } from './client.js';
import { NexusApiError, SdkUsageError } from './errors.js';
import { CLIENT_DEFAULTS } from './options.js';
import type { HttpDispatcher } from './transport.js';

const ENV = { SPIKE_TRUST_ROOT_NEXUS: 'td1.test' };
let pki: MtlsPki;
const servers: Harness[] = [];
const clients: NexusClient[] = [];

before(async () => {
  pki = await createMtlsPki();
});

after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.server.close();
});

/** A Nexus stand-in on `port` that answers every request 200 `{}` and counts them. */
async function nexusOn(port: number, answer: (res: import('node:http').ServerResponse) => void = (res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
  res.end('{}');
}): Promise<Harness & { requests: () => number }> {
  let n = 0;
  const h = await startServer(pki.serverSvid, pki.both, {
    port,
    handler: (req, res) => {
      req.resume();
      req.on('end', () => {
        n++;
        answer(res);
      });
    },
  });
  servers.push(h);
  return { ...h, requests: () => n };
}

async function client(ports: number[], opts: { retryUnavailableMs?: number; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<NexusClient> {
  const { env, ...rest } = opts;
  const c = await NexusClient.connect({
    urls: ports.map((p) => `https://127.0.0.1:${p}`),
    source: new StaticX509Source(pki.clientSvid, pki.both),
    env: { ...ENV, ...env },
    ...rest,
  });
  clients.push(c);
  return c;
}

describe('calls wait out an unavailable Nexus for retryUnavailableMs', () => {
  test('the default is 5 s', () => {
    assert.equal(CLIENT_DEFAULTS.retryUnavailableMs, 5_000);
  });

  test('Nexus restarting: a write to a lone URL waits for the listener and is sent exactly once', async () => {
    const port = await freePort();
    const c = await client([port]);
    const t0 = performance.now();
    const put = c.putSecret('apps/db', { k: 'v' });
    await new Promise((r) => setTimeout(r, 400));
    const back = await nexusOn(port);
    await put;
    assert.ok(performance.now() - t0 >= 400, 'the call waited for the restart');
    assert.equal(back.requests(), 1, 'sent once, after the listener came back');
  });

  test('retryUnavailableMs 0: a refused lone URL fails at once, as the CLI wants', async () => {
    const port = await freePort();
    const c = await client([port], { retryUnavailableMs: 0 });
    const t0 = performance.now();
    const e = await c.listSecrets().then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof NexusApiError && e.code === 'net_peer_connection', String(e));
    assert.equal(e.failure?.class, 'connection_refused');
    assert.equal(e.retriedMs, undefined);
    assert.ok(performance.now() - t0 < 1_000, 'no retry pauses');
  });

  test('still refused when the window ends: the error lists the last round only, one attempt per URL', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const c = await client([p1, p2], { retryUnavailableMs: 600 });
    const t0 = performance.now();
    const e = await c.putSecret('a/b', { k: 'v' }).then(() => undefined, (x: unknown) => x);
    const took = performance.now() - t0;
    assert.ok(e instanceof NexusApiError && e.code === 'net_peer_connection', String(e));
    assert.equal(e.attempts.length, 2);
    assert.ok(e.attempts.every((a) => a.failure.class === 'connection_refused'));
    // The last pause ends at the window's end and one last round follows: no overshoot of a pause.
    assert.ok(took >= 600 && took < 600 + 2_000, `gave up after ${took.toFixed(0)} ms`);
    assert.ok(e.retriedMs !== undefined && e.retriedMs >= 600, `retriedMs ${e.retriedMs}`);
    assert.match(e.message, /^failed to talk to SPIKE Nexus: .*\(connection refused\), .*\(connection refused\); retried for \d+\.\d s while no Nexus could take the call$/);
  });

  test('the call deadline bounds the retries', async () => {
    const port = await freePort();
    const c = await client([port], { retryUnavailableMs: 60_000, timeoutMs: 500 });
    const t0 = performance.now();
    await assert.rejects(c.getSecret('a/b'), { code: 'net_peer_connection' });
    assert.ok(performance.now() - t0 < 500 + 2_000, 'ended near the 500 ms deadline');
  });

  test('not ready yet: a read answered 503 state_not_ready is asked again until Nexus answers', async () => {
    let n = 0;
    const h = await nexusOn(0, (res) => {
      const out = ++n <= 2 ? '{"err":"state_not_ready"}' : '{"data":{"k":"v"}}';
      res.writeHead(n <= 2 ? 503 : 200, { 'content-type': 'application/json', 'content-length': out.length });
      res.end(out);
    });
    const c = await client([h.server.port]);
    assert.deepEqual({ ...(await c.getSecret('a/b')) }, { k: 'v' });
    assert.equal(h.requests(), 3);
  });

  test('still not ready when the window ends: the last answer, with how long the call waited', async () => {
    const h = await nexusOn(0, (res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': 25 });
      res.end('{"err":"state_not_ready"}');
    });
    const c = await client([h.server.port], { retryUnavailableMs: 400 });
    const e = await c.getSecret('a/b').then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof NexusApiError, String(e));
    assert.deepEqual([e.code, e.status, e.wireErr, e.url, e.route], ['state_not_ready', 503, 'state_not_ready', `https://127.0.0.1:${h.server.port}`, '/v1/store/secrets?action=get']);
    assert.ok(e.retriedMs !== undefined && e.retriedMs >= 400, `retriedMs ${e.retriedMs}`);
    assert.match(e.stack ?? '', /retried for/, 'the stack names the same message');
    assert.ok(h.requests() >= 2);
  });

  test('afterRetries keeps every field of the error, and its stack', () => {
    const cause = new Error('socket');
    const before = new NexusApiError('state_not_ready', {
      status: 503, wireErr: 'state_not_ready', cause, attempts: [{ url: 'https://a:1', failure: { class: 'connection_refused' } }],
      storeFailure: 'disk_full', at: { url: 'https://b:2', route: '/v1/store/secrets' }, outcome: 'not_applied', detail: 'store busy',
    });
    const after = before.afterRetries(1234.4);
    for (const k of ['code', 'status', 'wireErr', 'cause', 'attempts', 'storeFailure', 'url', 'route', 'outcome', 'detail'] as const) {
      assert.ok(Object.is(after[k], before[k]), k);
    }
    assert.equal(after.retriedMs, 1234);
    assert.equal(after.message, `${before.message}; retried for 1.2 s while no Nexus could take the call`);
    assert.equal(after.stack?.split('\n').slice(1).join('\n'), before.stack?.split('\n').slice(1).join('\n'), 'thrown where the first was');
  });

  test('a write answered 503 not_applied is sent again; one answered 503 with no outcome is not (it may have been applied)', async () => {
    let n = 0;
    const notApplied = await nexusOn(0, (res) => {
      const out = ++n === 1 ? '{"err":"state_not_ready","outcome":"not_applied"}' : '{}';
      res.writeHead(n === 1 ? 503 : 200, { 'content-type': 'application/json', 'content-length': out.length });
      res.end(out);
    });
    await (await client([notApplied.server.port])).putSecret('a/b', { k: 'v' });
    assert.equal(notApplied.requests(), 2);

    const unknown = await nexusOn(0, (res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': 25 });
      res.end('{"err":"state_not_ready"}');
    });
    const t0 = performance.now();
    await assert.rejects((await client([unknown.server.port], { retryUnavailableMs: 60_000 })).putSecret('a/b', { k: 'v' }), { code: 'state_not_ready' });
    assert.equal(unknown.requests(), 1);
    assert.ok(performance.now() - t0 < 2_000, 'no retry pauses');
  });

  test('a round with another failure is not repeated: a read whose connection broke after sending, then a refusal, ends the call', async () => {
    const port = await freePort();
    const breaks = await nexusOn(0, (res) => res.socket?.destroy());
    const c = await client([breaks.server.port, port], { retryUnavailableMs: 60_000 });
    const t0 = performance.now();
    const e = await c.listSecrets().then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof NexusApiError && e.code === 'net_peer_connection', String(e));
    assert.deepEqual(e.attempts.map((a) => a.failure.class), ['connection_closed', 'connection_refused']);
    assert.equal(breaks.requests(), 1, 'the instance that broke the connection was asked once');
    assert.ok(performance.now() - t0 < 2_000, 'no retry pauses');
  });

  test('a write whose error may have come after sending is not re-sent, even with a refusal in its causes', async () => {
    let calls = 0;
    const dispatcher: HttpDispatcher = {
      async request() {
        calls++;
        throw Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) });
      },
      async close() { /* nothing held */ },
    };
    const c = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher, retryUnavailableMs: 60_000 });
    await assert.rejects(c.putSecret('a/b', { k: 'v' }), { code: 'net_peer_connection' });
    assert.equal(calls, 1);
  });

  test('close() during the pause ends the call with sdk_closed, and nothing is sent after it', async () => {
    const port = await freePort();
    const c = await client([port]);
    const put = c.putSecret('a/b', { k: 'v' }).then(() => 'sent', (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await c.close();
    const e = await put;
    assert.ok(e instanceof SdkUsageError && e.code === 'sdk_closed', String(e));
    assert.ok(performance.now() - t0 < 1_000, 'ended at close, not at the end of the window');
    const late = await nexusOn(port);
    await new Promise((r) => setTimeout(r, 1_200)); // longer than any pause between rounds
    assert.equal(late.requests(), 0);
  });

  test('close() while a dial is under way (nothing sent yet) also ends the call with sdk_closed', async () => {
    let abandon: ((e: Error) => void) | undefined;
    const dispatcher: HttpDispatcher = {
      request: () => new Promise((_resolve, reject) => { abandon = reject; }), // a dial that does not finish
      async close() { abandon?.(Object.assign(new Error('client closed'), { code: 'ERR_CLIENT_CLOSED' })); },
    };
    const c = NexusClient.create({ urls: ['https://127.0.0.1:1', 'https://127.0.0.1:2'], dispatcher });
    const put = c.putSecret('a/b', { k: 'v' }).then(() => 'sent', (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    const e = await put;
    assert.ok(e instanceof SdkUsageError && e.code === 'sdk_closed', String(e));
  });

  test('a read: one instance answers 503 (not ready), the other refuses; the read succeeds once the first is ready', async () => {
    const port = await freePort();
    let ready = false;
    const a = await nexusOn(0, (res) => {
      const out = ready ? '{"data":{"k":"v"}}' : '{"err":"state_not_ready"}';
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'content-length': out.length });
      res.end(out);
    });
    const c = await client([a.server.port, port]);
    setTimeout(() => { ready = true; }, 400);
    assert.deepEqual({ ...(await c.getSecret('a/b')) }, { k: 'v' });
    assert.ok(a.requests() >= 2);
  });

  test("the caller's signal ends the wait with its reason", async () => {
    const port = await freePort();
    const c = await client([port]);
    const reason = new Error('caller gave up');
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 300);
    await assert.rejects(c.listSecrets({ signal: ac.signal }), (e: unknown) => e === reason);
  });

  test('SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY sets the window; the option wins; a bad value names the variable', async () => {
    const port = await freePort();
    const timed = async (c: NexusClient): Promise<number> => {
      const t0 = performance.now();
      await assert.rejects(c.listSecrets(), { code: 'net_peer_connection' });
      return performance.now() - t0;
    };
    assert.ok(await timed(await client([port], { env: { SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY: '0' } })) < 1_000);
    assert.ok(await timed(await client([port], { env: { SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY: '400ms' } })) >= 400);
    assert.ok(await timed(await client([port], { env: { SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY: '1h' }, retryUnavailableMs: 0 })) < 1_000);
    await assert.rejects(client([port], { env: { SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY: 'soon' } }),
      (e: unknown) => e instanceof Error && e.message.includes('SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY') && !e.message.includes('soon'));
  });

  test('a bad retryUnavailableMs is a usage error, before anything is opened', async () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      await assert.rejects(client([1], { retryUnavailableMs: bad }), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_bad_argument');
    }
  });
});
