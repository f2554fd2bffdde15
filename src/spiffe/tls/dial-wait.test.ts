/**
 * How long a dial waits for its handshake slot (dial.ts, dial-gate.ts): while handshakes to the
 * target keep succeeding, a long queue is waited out whatever its length; when the target stops
 * answering, every waiting dial fails within one connect timeout without being started.
 * Real TLS on loopback, with a TCP relay in front of the server that holds each connection for
 * a while (a loaded server) or forever (a dead one).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { dialMtls, contextCache, slotWaitLeft, MAX_WAIT_TIMEOUTS, type DialOptions } from './dial.js';
import { createMtlsHttpsClient, type MtlsHttpsClient } from './https-client.js';
import { MTLS_DEFAULTS } from './context.js';
import { dialGateCount } from './dial-gate.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { createMtlsPki, startServer } from '../../../test/helpers/mtls-harness.js';

let serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
let source: StaticX509Source;
let dialOptions: (timeoutMs: number) => DialOptions;
before(async () => {
  ({ serverSvid, clientSvid, both } = await createMtlsPki());
  source = new StaticX509Source(clientSvid, both);
  const context = contextCache(source);
  dialOptions = (timeoutMs) => ({ source, authorizeServer: authorizeAny(), context, timeoutMs, timeoutError: () => new Error(`timeout ${timeoutMs}`) });
});

/** A TCP relay to `port` that holds each accepted connection `holdMs` first (never, for Infinity). */
async function relay(port: number, holdMs: number): Promise<{ port: number; accepted: () => number; close: () => void }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    accepted++;
    sockets.add(inbound);
    inbound.on('error', () => undefined);
    if (holdMs === Infinity) return;
    setTimeout(() => {
      const outbound = net.connect(port, '127.0.0.1');
      sockets.add(outbound);
      outbound.on('error', () => inbound.destroy());
      inbound.pipe(outbound).pipe(inbound);
    }, holdMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

type Relay = Awaited<ReturnType<typeof relay>>;

/** Runs `body` against an mTLS server behind a relay that holds each connection `holdMs`; closes both after. */
async function behindRelay(holdMs: number, body: (r: Relay) => Promise<void>): Promise<void> {
  const h = await startServer(serverSvid, both);
  const r = await relay(h.server.port, holdMs);
  try {
    await body(r);
  } finally {
    r.close();
    await h.server.close();
  }
}

/** One dial to the relay; resolves with its error, or null (the socket is closed at once). */
function dial(r: Relay, timeoutMs: number): Promise<Error | null> {
  return new Promise((resolve) => {
    dialMtls({ hostname: '127.0.0.1', port: r.port }, dialOptions(timeoutMs), (err, socket) => {
      socket?.destroy();
      resolve(err);
    });
  });
}

/** Waits until the relay has accepted `n` connections. */
async function untilAccepted(r: Relay, n: number): Promise<void> {
  while (r.accepted() < n) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** One request through an https client to the relay; its outcome ('answered' or the error message). */
function call(client: MtlsHttpsClient, r: Relay, signal?: AbortSignal): Promise<string> {
  return client.request({ origin: `https://127.0.0.1:${r.port}`, path: '/', method: 'POST', headers: {}, body: Buffer.from('{}'), ...(signal ? { signal } : {}) })
    .then(() => 'answered', (e: unknown) => (e as Error).message);
}

const SLOTS = MTLS_DEFAULTS.clientHandshakesPerTarget;

test('a queue of dials longer than one connect timeout is waited out while handshakes to the target keep succeeding', async () => {
  // Each connection reaches the server 400 ms after it was opened, so ten waves of
  // `clientHandshakesPerTarget` dials take at least 3.6 s before the last wave starts: more
  // than the 3 s connect timeout, which a wait bounded by its own length would hit. A wave
  // would have to take 3 s for this to fail.
  await behindRelay(400, async (r) => {
    const n = 10 * SLOTS;
    const results = await Promise.all(Array.from({ length: n }, () => dial(r, 3_000)));
    assert.deepEqual(results.filter((e) => e !== null).map((e) => e!.message), [], 'every dial connected');
    assert.equal(r.accepted(), n);
    assert.equal(dialGateCount(), 0, 'no slot kept');
  });
});

test('while no handshake to the target succeeds, a waiting dial fails after one connect timeout, never started', async () => {
  await behindRelay(Infinity, async (r) => {
    // The first wave holds every slot of the target (the relay never answers) for 60 s.
    const held = Array.from({ length: SLOTS }, () => dial(r, 60_000));
    await untilAccepted(r, SLOTS);
    const waiting = await Promise.all(Array.from({ length: 4 }, () => dial(r, 300)));
    assert.deepEqual(waiting.map((e) => e?.message), Array(4).fill('timeout 300'));
    assert.equal(r.accepted(), SLOTS, 'the waiting dials were never started');
    r.close();
    const first = await Promise.all(held);
    assert.ok(first.every((e) => e !== null), 'the held dials fail once the relay closes them');
    assert.equal(dialGateCount(), 0, 'no slot kept');
  });
});

test('a waiting dial: one connect timeout without a handshake succeeding since it joined the queue, and at most MAX_WAIT_TIMEOUTS in all', () => {
  const T = 1_000;
  assert.equal(slotWaitLeft(0, 0, -Infinity, T), T, 'a new waiter gets one timeout');
  assert.equal(slotWaitLeft(400, 0, -Infinity, T), 600);
  assert.ok(slotWaitLeft(1_000, 0, -Infinity, T) <= 0, 'no success at all: it times out after one timeout');
  assert.equal(slotWaitLeft(100, 100, 50, T), T, 'a success before it joined the queue does not count');
  assert.equal(slotWaitLeft(1_500, 0, 900, T), 400, 'a success while it waits gives it one more timeout from then');
  assert.equal(slotWaitLeft(2_950, 0, 2_900, T), 50, 'successes keep it waiting only up to the cap');
  assert.ok(slotWaitLeft(MAX_WAIT_TIMEOUTS * T, 0, MAX_WAIT_TIMEOUTS * T, T) <= 0, 'a success at the cap does not extend it');
});

test('closing the https client abandons its dials still waiting for a handshake slot', async () => {
  await behindRelay(Infinity, async (r) => {
    const client = createMtlsHttpsClient({ source, authorizeServer: authorizeAny(), connections: 64, connectTimeoutMs: 60_000 });
    const calls = Array.from({ length: SLOTS + 4 }, () => call(client, r));
    await untilAccepted(r, SLOTS);
    await client.close();
    const outcomes = await Promise.all(calls);
    assert.equal(outcomes.filter((x) => x === 'answered').length, 0);
    assert.equal(r.accepted(), SLOTS, 'the waiting dials never connected');
    assert.equal(dialGateCount(), 0, 'no slot kept: the 60 s connect timeout is not what ended them');
  });
});

test('a request aborted before it has a connection abandons its dial (the dial does not outlive the call)', async () => {
  await behindRelay(Infinity, async (r) => {
    const client = createMtlsHttpsClient({ source, authorizeServer: authorizeAny(), connectTimeoutMs: 60_000 });
    try {
      const ac = new AbortController();
      const outcome = call(client, r, ac.signal);
      await untilAccepted(r, 1);
      assert.equal(dialGateCount(), 1, 'its dial holds a handshake slot');
      ac.abort(new Error('caller gave up'));
      assert.match(await outcome, /caller gave up/);
      assert.equal(dialGateCount(), 0, 'the dial was abandoned at once, not at its 60 s connect timeout');
    } finally {
      await client.close();
    }
  });
});
