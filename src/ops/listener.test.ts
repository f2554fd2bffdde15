// test-process: own
// It listens for process-wide 'warning' events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createLogger } from '../lib/index.js';
import { createOpsServer, type Readiness } from './listener.js';
import { cachedProbe } from './probe.js';

const logger = createLogger({ component: 'ops-test', level: 'silent' });

async function withServer(readiness: () => Readiness | Promise<Readiness>, fn: (url: string) => Promise<void>, metrics = true): Promise<void> {
  const ops = createOpsServer({
    host: '127.0.0.1', port: 0, logger, readiness,
    ...(metrics ? { metrics: { contentType: 'text/plain; version=0.0.4', render: async () => 'x_total 1\n' } } : {}),
  });
  await ops.listen();
  try {
    await fn(ops.url);
  } finally {
    await ops.close();
  }
}

test('ops: healthz, readyz 503 → 200 with the failing conditions, metrics, HEAD', async () => {
  let state: Readiness = { ready: false, failing: ['root_key', 'policies'] };
  await withServer(() => state, async (url) => {
    const h = await fetch(`${url}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('cache-control'), 'no-store');
    const r1 = await fetch(`${url}/readyz`);
    assert.equal(r1.status, 503);
    assert.deepEqual(await r1.json(), { ready: false, failing: ['root_key', 'policies'] });
    state = { ready: true, failing: [] };
    const r2 = await fetch(`${url}/readyz?verbose=1`);
    assert.equal(r2.status, 200);
    assert.deepEqual(await r2.json(), { ready: true, failing: [] });
    const m = await fetch(`${url}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(await m.text(), 'x_total 1\n');
    const head = await fetch(`${url}/readyz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });
});

test('ops: unknown paths 404, other methods 405, a throwing probe 500 and the server lives on', async () => {
  let boom = true;
  await withServer(() => {
    if (boom) throw new Error('probe failed');
    return { ready: true, failing: [] };
  }, async (url) => {
    for (const p of ['/', '/v1/store/secrets', '/healthz/', '/metricsx', '/healthz%20']) {
      assert.equal((await fetch(`${url}${p}`)).status, 404, p);
    }
    const post = await fetch(`${url}/healthz`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal((await fetch(`${url}/readyz`)).status, 500);
    boom = false;
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
  });
});

test('ops: /metrics is 404 without a registry; garbage on the socket is dropped', async () => {
  await withServer(() => ({ ready: true, failing: [] }), async (url) => {
    assert.equal((await fetch(`${url}/metrics`)).status, 404);
    const port = Number(new URL(url).port);
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('\x16\x03\x01 not http\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  }, false);
});

test('cachedProbe: one check per ttl, a hung check fails at the deadline', async () => {
  let calls = 0;
  let t = 0;
  const p = cachedProbe(async () => { calls++; }, { ttlMs: 1000, now: () => t });
  assert.equal(await p(), true);
  assert.equal(await p(), true);
  assert.equal(calls, 1);
  t = 2000;
  await Promise.all([p(), p(), p()]);
  assert.equal(calls, 2);
  const hung = cachedProbe(() => new Promise(() => undefined), { timeoutMs: 20 });
  assert.equal(await hung(), false);
  const failing = cachedProbe(() => Promise.reject(new Error('down')));
  assert.equal(await failing(), false);
});

test('ops: listen() on a taken port fails and leaves no listener behind, however often it is retried; it binds once the port is free', async () => {
  const held = net.createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
  const port = (held.address() as net.AddressInfo).port;
  const ops = createOpsServer({ host: '127.0.0.1', port, logger, readiness: () => ({ ready: true, failing: [] }) });
  const leaks: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'MaxListenersExceededWarning') leaks.push(w.message);
  };
  process.on('warning', onWarning);
  try {
    for (let i = 0; i < 20; i++) await assert.rejects(ops.listen(), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(leaks, [], 'a failed attempt leaves no listening/error listener behind');
    assert.equal(ops.listening, false);
    await new Promise<void>((r) => held.close(() => r()));
    await ops.listen();
    assert.equal(ops.listening, true);
    const server = (ops as unknown as { port: number }).port;
    assert.equal(server, port);
  } finally {
    process.off('warning', onWarning);
    await ops.close();
  }
});

/** One GET over a new connection (no keep-alive pool), from `localAddress`; its status or 0. */
function getOnce(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, localAddress, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

test('attack-ops-idle-lockout: idle sockets from other addresses, re-opened as soon as they are cut, never keep a probe out', async () => {
  await withServer(() => ({ ready: true, failing: [] }), async (url) => {
    const port = Number(new URL(url).port);
    let stop = false;
    let opened = 0;
    const hold = (from: string): void => {
      if (stop) return;
      opened++;
      const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
      s.on('error', () => undefined);
      s.on('close', () => setTimeout(() => hold(from), 2));
    };
    // 40 from one address, then 10 from each of four more: every slot taken, churning.
    for (let i = 0; i < 40; i++) hold('127.0.0.2');
    for (const from of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) for (let i = 0; i < 10; i++) hold(from);
    await new Promise((r) => setTimeout(r, 300));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        statuses.push(await getOnce(`${url}/healthz`, '127.0.0.1'));
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.deepEqual(statuses, statuses.map(() => 200), `probes: ${statuses.join(',')} (attacker connects: ${opened})`);
    } finally {
      stop = true;
    }
  });
});

test('ops: /metrics renders at most once per gap however many scrapes arrive, and each answer is rendered after its request', async () => {
  let renders = 0;
  let counter = 0;
  const ops = createOpsServer({
    host: '127.0.0.1', port: 0, logger, readiness: () => ({ ready: true, failing: [] }),
    metrics: { contentType: 'text/plain; version=0.0.4', render: async () => { renders++; return `c ${counter}\n`; } },
  });
  await ops.listen();
  try {
    // Within the per-address cap (8 connections): 6 scrapes at once, 5 times over.
    for (let round = 0; round < 5; round++) {
      const bodies = await Promise.all(Array.from({ length: 6 }, () => fetch(`${ops.url}/metrics`).then((r) => r.text())));
      assert.ok(bodies.every((b) => b === 'c 0\n'));
    }
    assert.ok(renders <= 10, `renders for 30 scrapes, 6 at a time: ${renders}`);
    counter = 1;
    assert.equal(await (await fetch(`${ops.url}/metrics`)).text(), 'c 1\n', 'a scrape after a change sees it');
  } finally {
    await ops.close();
  }
});
