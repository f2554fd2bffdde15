/**
 * The handshake gate on real loopback sockets, with a recording `start` in place of TLS (the
 * real TLS server behind it: the stalled-ClientHello attack at the end, server.test.ts and the
 * FI-07/FI-09 tests).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { HandshakeGate, type HandshakeGateOptions } from './handshake-gate.js';
import { issueLeaf } from '../../../test/helpers/pki.js';
import { waitFor, createMtlsPki, startServer, pemKey, CLIENT_ID } from '../../../test/helpers/mtls-harness.js';

interface Rig {
  gate: HandshakeGate;
  /** Server-side sockets in the order the gate started them. */
  started: Socket[];
  timeouts: () => number;
  port: number;
  close: () => Promise<void>;
}

const open: Array<() => Promise<void>> = [];
after(async () => { for (const c of open) await c(); });

async function rig(opts: Partial<HandshakeGateOptions>): Promise<Rig> {
  const started: Socket[] = [];
  let timeouts = 0;
  const gate = new HandshakeGate((raw) => { started.push(raw); }, {
    // Lease and wait bound longer than any test unless it sets them: nothing moves by time alone.
    slots: 1, leaseMs: 60_000, waitMs: 60_000, timeoutMs: 120_000, onTimeout: () => { timeouts++; }, maxQueued: 100, maxQueuedPerSource: 100, ...opts,
  });
  const server = net.createServer((raw) => gate.admit(raw));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const clients: Socket[] = [];
  const close = async (): Promise<void> => {
    gate.close();
    for (const s of started) s.destroy();
    for (const c of clients) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  open.push(close);
  const port = (server.address() as net.AddressInfo).port;
  return { gate, started, timeouts: () => timeouts, port, close };
}

/** A client that connects from `from` and, unless `silent`, sends one byte (a ClientHello's first). */
function client(port: number, from = '127.0.0.1', silent = false): Promise<Socket> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      if (!silent) s.write('\x16');
      resolve(s);
    });
    s.on('error', () => undefined);
  });
}

const closed = (s: Socket): boolean => s.destroyed || s.readableEnded;

test('FI-09: at most `slots` handshakes run at once; the next starts when one ends', async () => {
  const r = await rig({ slots: 2 });
  for (let i = 0; i < 5; i++) await client(r.port);
  await waitFor(() => r.started.length + r.gate.queued === 5, 'every socket started or queued');
  assert.equal(r.started.length, 2, 'two slots, two running');
  r.gate.settled(r.started[0]!);
  await waitFor(() => r.started.length === 3, 'a freed slot starts the next');
  assert.equal(r.gate.queued, 2);
  r.started[1]!.destroy(); // a closed socket frees its slot too
  await waitFor(() => r.started.length === 4, 'a closed socket frees its slot');
});

test('FI-07: a socket that sends nothing never takes a slot and is closed at the handshake timeout', async () => {
  const r = await rig({ slots: 1, timeoutMs: 600 });
  const silent = await client(r.port, '127.0.0.1', true);
  await client(r.port);
  await waitFor(() => r.started.length === 1, 'the speaking socket starts at once');
  assert.notEqual(r.started[0]!.remotePort, silent.localPort, 'the silent socket did not take the slot');
  r.gate.settled(r.started[0]!);
  await waitFor(() => closed(silent), 'the silent socket is closed at the timeout');
  assert.equal(r.timeouts(), 1);
});

test('attack: a peer that stalls mid-handshake holds its slot for the lease only, and is not closed for it', async () => {
  const r = await rig({ slots: 1, leaseMs: 50 });
  const staller = await client(r.port);
  await waitFor(() => r.started.length === 1, 'the staller starts');
  await client(r.port);
  await waitFor(() => r.started.length === 2, 'the next socket starts once the lease ran out');
  assert.equal(closed(staller), false, 'the staller keeps its connection (its own timeout still applies)');
});

test('a socket waiting for a slot starts without one after the wait bound, and so does one whose first byte comes later', async () => {
  const r = await rig({ slots: 1, waitMs: 800 });
  const a = await client(r.port);
  await waitFor(() => r.started.length === 1, 'the first starts and keeps its slot');
  // Accepted before the queued one: its wait bound passes first (timers of one length fire in order).
  const late = await client(r.port, '127.0.0.1', true);
  await client(r.port);
  // The first keeps its slot (lease of a minute): only the wait bound can start the third.
  await waitFor(() => r.started.length === 2, 'the waiting socket starts after the wait bound, the slot still held');
  assert.equal(r.gate.queued, 0);
  late.write('\x16');
  await waitFor(() => r.started.length === 3, 'a first byte after the wait bound starts at once');
  assert.equal(closed(a), false);
  assert.equal(r.timeouts(), 0, 'no socket that spoke is closed by the gate before the timeout');
});

test('the queue serves source networks in turn: a burst from one address does not delay another address by more than one socket', async () => {
  const r = await rig({ slots: 1 });
  await client(r.port, '127.0.0.2');
  await waitFor(() => r.started.length === 1, 'the first starts');
  for (let i = 0; i < 3; i++) await client(r.port, '127.0.0.2');
  await waitFor(() => r.gate.queued === 3, 'the burst waits');
  await client(r.port, '127.0.0.3');
  await waitFor(() => r.gate.queued === 4, 'the other address waits behind the burst');
  for (let n = 1; n <= 4; n++) {
    r.gate.settled(r.started[n - 1]!);
    await waitFor(() => r.started.length === n + 1, `start ${n + 1}`);
  }
  assert.deepEqual(r.started.map((s) => s.remoteAddress), ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.2']);
});

test('caps: past `maxQueued` a socket starts without a slot; the budgets hear when a socket starts waiting and when its TLS starts', async () => {
  const hooks: string[] = [];
  const r = await rig({ slots: 1, maxQueued: 2, onQueued: () => hooks.push('queued'), onStarted: () => hooks.push('started') });
  await client(r.port);
  await waitFor(() => r.started.length === 1, 'the first starts and keeps its slot');
  await client(r.port);
  await client(r.port);
  await waitFor(() => r.gate.queued === 2, 'two wait');
  await client(r.port);
  await waitFor(() => r.started.length === 2, 'the third waiting socket would pass the cap: it starts without a slot');
  assert.equal(r.gate.queued, 2);
  assert.deepEqual(hooks, ['queued', 'queued'], 'only sockets that waited are reported');
  r.gate.settled(r.started[0]!);
  await waitFor(() => r.started.length === 3, 'a freed slot starts a waiting socket');
  assert.equal(r.gate.queued, 1);
  assert.deepEqual(hooks, ['queued', 'queued', 'started']);
});

test('close() closes the waiting sockets and refuses later ones; slots 0 starts every socket at accept', async () => {
  const r = await rig({ slots: 1 });
  await client(r.port);
  await waitFor(() => r.started.length === 1, 'the first starts');
  const waiting = await client(r.port);
  await waitFor(() => r.gate.queued === 1, 'the second waits');
  const quiet = await client(r.port, '127.0.0.1', true);
  await waitFor(() => r.gate.pendingCount === 3, 'the third is accepted, silent');
  r.gate.close();
  await waitFor(() => closed(waiting), 'the waiting socket is closed');
  quiet.write('\x16');
  await waitFor(() => closed(quiet), 'a socket whose first byte comes after close() is closed');
  assert.equal(r.started.length, 1, 'and never started');
  assert.equal(closed(r.started[0]!), false, 'a running handshake is left to the server');
  const late = await client(r.port);
  await waitFor(() => closed(late), 'a socket after close is closed');

  const open0 = await rig({ slots: 0 });
  await client(open0.port, '127.0.0.1', true);
  await waitFor(() => open0.started.length === 1, 'no pacing: started without a byte');
});

/** A real mTLS handshake from `from`; resolves whether it completed, and how long it took. */
function realHandshake(port: number, ca: string, leaf: { pem: string; key: string }, from: string): Promise<{ ok: boolean; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress: from });
    raw.on('error', () => undefined);
    const s = tls.connect({ socket: raw, ca: [ca], cert: leaf.pem, key: leaf.key, checkServerIdentity: () => undefined });
    s.once('secureConnect', () => { s.destroy(); resolve({ ok: true, ms: Date.now() - t0 }); });
    s.once('error', () => resolve({ ok: false, ms: Date.now() - t0 }));
  });
}

/** `n` sockets from `from` that send the first bytes of a ClientHello record, then nothing. */
async function stallers(port: number, from: string, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = await client(port, from, true);
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    out.push(s);
  }
  return out;
}

test('attack: stalled ClientHellos do not keep a real client from its TLS handshake (real mTLS server, one slot): the lease frees the slot, and the wait bound holds even when the stallers keep it', { timeout: 60_000 }, async () => {
  const pki = await createMtlsPki();
  const issued = await issueLeaf(pki.ca1, { uris: [CLIENT_ID] });
  const leaf = { pem: issued.pem, key: pemKey(issued.key) };
  // A 20 s handshake timeout: the stallers' TLS runs until then. Budgets wide open, so no
  // eviction hides what the gate does.
  const limits = { handshakeSlots: 1, handshakeTimeoutMs: 20_000, maxHandshakes: 1024, maxHandshakesPerSource: 1024 };
  // A wait bound longer than the test: only the 5 ms lease lets the client through.
  const leased = await startServer(pki.serverSvid, pki.both, { ...limits, handshakeWaitMs: 60_000 });
  // A lease longer than the test, so each staller keeps the slot: only the wait bound (500 ms)
  // lets a client through, the real client from the stallers' own address included.
  const held = await startServer(pki.serverSvid, pki.both, { ...limits, handshakeLeaseMs: 60_000 });
  open.push(() => leased.server.close(), () => held.server.close());
  const sockets = [...await stallers(leased.server.port, '127.0.0.2', 40), ...await stallers(held.server.port, '127.0.0.2', 40)];
  await waitFor(() => leased.server.handshaking() >= 40 && held.server.handshaking() >= 40, 'the stallers are accepted');
  const [viaLease, viaBound] = await Promise.all([
    realHandshake(leased.server.port, pki.ca1.pem, leaf, '127.0.0.1'),
    realHandshake(held.server.port, pki.ca1.pem, leaf, '127.0.0.2'),
  ]);
  for (const s of sockets) s.destroy();
  assert.equal(viaLease.ok, true, 'the real client completed its handshake (lease)');
  assert.ok(viaLease.ms < 10_000, `through by the lease (took ${viaLease.ms} ms; without it: the stallers' 20 s timeouts)`);
  assert.equal(viaBound.ok, true, 'the real client from the stallers\' address completed its handshake (wait bound)');
  // Without the wait bound it would wait for 40 stallers' 20 s timeouts (a failure mode of
  // minutes, not milliseconds): 10 s separates the two with a wide margin for a loaded machine.
  assert.ok(viaBound.ms < 10_000, `through by the wait bound (took ${viaBound.ms} ms)`);
});
