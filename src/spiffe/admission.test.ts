import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConnectionAdmission, type AdmissionEvent } from './admission.js';

// Real sockets: a loopback server hands its accepted sockets to the admission under test.
let server: net.Server;
let accepted: net.Socket[] = [];
const clients: net.Socket[] = [];
before(async () => {
  server = net.createServer((s) => { accepted.push(s); s.on('error', () => undefined); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});
after(async () => {
  for (const c of clients) c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

async function connect(n: number, localAddress = '127.0.0.1'): Promise<net.Socket[]> {
  const start = accepted.length;
  for (let i = 0; i < n; i++) {
    const c = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', localAddress });
    c.on('error', () => undefined);
    clients.push(c);
  }
  const deadline = Date.now() + 10_000;
  while (accepted.length < start + n) {
    if (Date.now() > deadline) throw new Error('accept timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
  return accepted.slice(start, start + n);
}

const closed = (s: net.Socket): boolean => s.destroyed;

test('per-source budget: a new socket evicts the oldest handshaking socket of the same address', async () => {
  accepted = [];
  const events: AdmissionEvent[] = [];
  const a = new ConnectionAdmission({ maxConnections: 10, maxHandshakes: 100, maxHandshakesPerSource: 3 }, (e) => events.push(e));
  const socks = await connect(5);
  for (const s of socks) a.accepted(s);
  assert.deepEqual(socks.map(closed), [true, true, false, false, false], 'the two oldest went');
  assert.equal(a.handshaking, 3);
  assert.deepEqual(events, ['handshake_evicted_per_source', 'handshake_evicted_per_source']);
});

test('per-source budget: another address is never evicted by a flood from one address', async () => {
  accepted = [];
  const a = new ConnectionAdmission({ maxConnections: 10, maxHandshakes: 100, maxHandshakesPerSource: 2 }, () => undefined);
  const [victim] = await connect(1, '127.0.0.2');
  a.accepted(victim!);
  const flood = await connect(20, '127.0.0.1');
  for (const s of flood) a.accepted(s);
  assert.equal(closed(victim!), false, 'the other address keeps its handshake slot');
  assert.equal(a.handshaking, 3);
});

test('global budget: when full, the oldest handshaking socket goes; a finished handshake frees its slot', async () => {
  accepted = [];
  const a = new ConnectionAdmission({ maxConnections: 10, maxHandshakes: 2, maxHandshakesPerSource: 100 }, () => undefined);
  const [s1, s2, s3] = await connect(3);
  a.accepted(s1!);
  a.accepted(s2!);
  assert.equal(a.verified(s2!), true, 's2 finished its handshake');
  a.accepted(s3!);
  assert.equal(closed(s1!), false, 'room was made by s2 leaving the handshake budget');
  const [s4] = await connect(1);
  a.accepted(s4!);
  assert.equal(closed(s1!), true, 'oldest handshaking socket evicted');
  assert.equal(closed(s2!), false, 'verified sockets are never evicted');
});

test('verified budget: over maxConnections the newcomer is refused; a closed connection frees its place', async () => {
  accepted = [];
  const events: AdmissionEvent[] = [];
  const a = new ConnectionAdmission({ maxConnections: 1, maxHandshakes: 10, maxHandshakesPerSource: 10 }, (e) => events.push(e));
  const [s1, s2] = await connect(2);
  a.accepted(s1!);
  a.accepted(s2!);
  assert.equal(a.verified(s1!), true);
  assert.equal(a.verified(s2!), false);
  assert.deepEqual(events, ['connection_limit']);
  s1!.destroy();
  await new Promise((r) => s1!.once('close', r));
  const [s3] = await connect(1);
  a.accepted(s3!);
  assert.equal(a.verified(s3!), true);
});

test('limits must be positive integers', () => {
  assert.throws(() => new ConnectionAdmission({ maxConnections: 0, maxHandshakes: 1, maxHandshakesPerSource: 1 }, () => undefined), RangeError);
  assert.throws(() => new ConnectionAdmission({ maxConnections: 1, maxHandshakes: 1.5, maxHandshakesPerSource: 1 }, () => undefined), RangeError);
});
