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
    slots: 1, leaseMs: 60_000, timeoutMs: 60_000, onTimeout: () => { timeouts++; }, ...opts,
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

test('a socket queued for half the handshake timeout starts without a slot, and so does one whose first byte comes later', async () => {
  const r = await rig({ slots: 1, timeoutMs: 3_000 });
  const a = await client(r.port);
  await waitFor(() => r.started.length === 1, 'the first starts');
  await client(r.port);
  await waitFor(() => r.gate.queued === 1, 'the second waits');
  const late = await client(r.port, '127.0.0.1', true);
  await waitFor(() => r.started.length === 2, 'the second starts at half the timeout, the slot still held');
  assert.equal(closed(a), false, 'the second started while the first still held the slot');
  late.write('\x16');
  await waitFor(() => r.started.length === 3, 'a first byte after half the timeout starts at once');
  assert.equal(r.timeouts(), 0, 'no socket that spoke is closed by the gate (the TLS server times its handshake)');
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

test('close() closes the waiting sockets and refuses later ones; slots 0 starts every socket at accept', async () => {
  const r = await rig({ slots: 1 });
  await client(r.port);
  await waitFor(() => r.started.length === 1, 'the first starts');
  const waiting = await client(r.port);
  await waitFor(() => r.gate.queued === 1, 'the second waits');
  r.gate.close();
  await waitFor(() => closed(waiting), 'the waiting socket is closed');
  assert.equal(closed(r.started[0]!), false, 'a running handshake is left to the server');
  const late = await client(r.port);
  await waitFor(() => closed(late), 'a socket after close is closed');

  const open0 = await rig({ slots: 0 });
  await client(open0.port, '127.0.0.1', true);
  await waitFor(() => open0.started.length === 1, 'no pacing: started without a byte');
});

test('attack: stalled ClientHellos from many sockets do not keep a real client from its TLS handshake (real mTLS server, one slot)', { timeout: 60_000 }, async () => {
  const pki = await createMtlsPki();
  const leaf = await issueLeaf(pki.ca1, { uris: [CLIENT_ID] });
  // A handshake timeout of 20 s puts the half-timeout overflow at 10 s: a client that gets
  // through well before that got through by the lease, not by the overflow.
  const h = await startServer(pki.serverSvid, pki.both, { handshakeSlots: 1, handshakeTimeoutMs: 20_000, maxHandshakes: 1024, maxHandshakesPerSource: 1024 });
  open.push(() => h.server.close());
  const stallers: Socket[] = [];
  for (let i = 0; i < 40; i++) {
    // The first bytes of a TLS record header announcing a 512-byte handshake record, then nothing.
    const s = await client(h.server.port, '127.0.0.2', true);
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    stallers.push(s);
  }
  await waitFor(() => h.server.handshaking() >= 40, 'the stallers are accepted');
  const t0 = Date.now();
  const ok = await new Promise<boolean>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: h.server.port, ca: [pki.ca1.pem], cert: leaf.pem, key: pemKey(leaf.key), checkServerIdentity: () => undefined });
    s.once('secureConnect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  const took = Date.now() - t0;
  for (const s of stallers) s.destroy();
  assert.equal(ok, true, 'the real client completed its handshake');
  assert.ok(took < 10_000, `through by the lease, before the overflow at half the timeout (took ${took} ms)`);
});
