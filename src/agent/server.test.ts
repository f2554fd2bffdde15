/** The agent's Workload API server in-process: stream bounds, rotation fan-out, shutdown. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../lib/log.js';
import { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { WorkloadX509Source } from '../spiffe/workloadapi/index.js';
import { DevCa } from './ca.js';
import { WorkloadApiServer } from './server.js';

const TD = TrustDomain.parse('spike.ist');
const silent = createLogger({ component: 'test', level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-srv-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

async function start(name: string, svidTtlMs: number, maxStreamsPerIdentity?: number): Promise<WorkloadApiServer> {
  const ca = await DevCa.loadOrCreate(path.join(root, 'ca'), TD);
  return WorkloadApiServer.start({
    ca,
    identities: [{ name: 'w', spiffeId: SpiffeId.parse('spiffe://spike.ist/w') }],
    socketDir: path.join(root, name),
    svidTtlMs,
    logger: silent,
    ...(maxStreamsPerIdentity !== undefined ? { maxStreamsPerIdentity } : {}),
  });
}

/** Opens a raw FetchX509SVID stream with the header; resolves on its first message or status. */
function openStream(sock: string): Promise<{ first: 'data' | grpc.status; done: Promise<grpc.status>; close(): void }> {
  const client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  const call = client.makeServerStreamRequest('/SpiffeWorkloadAPI/FetchX509SVID', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), md);
  call.on('error', () => {});
  const done = new Promise<grpc.status>((res) => call.on('status', (st: grpc.StatusObject) => {
    client.close();
    res(st.code);
  }));
  return new Promise((resolve) => {
    const close = (): void => call.cancel();
    call.once('data', () => resolve({ first: 'data', done, close }));
    void done.then((code) => resolve({ first: code, done, close }));
  });
}

test('open X.509 streams per identity are bounded (RESOURCE_EXHAUSTED beyond the cap)', async () => {
  const srv = await start('bounded', 60_000, 2);
  try {
    const sock = srv.sockets()['w']!;
    const a = await openStream(sock);
    const b = await openStream(sock);
    const c = await openStream(sock);
    assert.equal(a.first, 'data');
    assert.equal(b.first, 'data');
    assert.equal(c.first, grpc.status.RESOURCE_EXHAUSTED);
    a.close();
    await a.done;
    // The server frees the slot once it has processed the cancel: wait for that (a condition
    // with a generous deadline), not for a fixed 100 ms.
    const deadline = Date.now() + 30_000;
    let d = await openStream(sock);
    while (d.first !== 'data' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      d = await openStream(sock);
    }
    assert.equal(d.first, 'data', 'a freed slot can be used again');
    b.close();
    d.close();
  } finally {
    await srv.close();
  }
});

test('rotation reaches every open stream of the identity, each with the same new serial', async () => {
  const srv = await start('fanout', 2_000);
  const endpoint = `unix://${srv.sockets()['w']}`;
  const s1 = await WorkloadX509Source.open({ endpoint, timeoutMs: 30_000, logger: silent });
  const s2 = await WorkloadX509Source.open({ endpoint, timeoutMs: 30_000, logger: silent });
  try {
    const before = srv.currentSerial('w');
    const both = Promise.all([s1, s2].map((s) => new Promise<void>((res) => s.once('update', () => res()))));
    await both;
    const after = srv.currentSerial('w');
    assert.notEqual(after, before);
    const serial = (s: WorkloadX509Source): string => s.getX509Svid().certificates[0]!.serialNumber;
    // Both streams hold the same SVID. Rotation goes on (every second), so one stream may be a
    // rotation ahead for a moment: they must agree once both have processed it (generous deadline).
    const deadline = Date.now() + 30_000;
    while (serial(s1) !== serial(s2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(serial(s1), serial(s2));
  } finally {
    s1.close();
    s2.close();
    await srv.close();
  }
});

test('close ends open streams with UNAVAILABLE and removes the socket file', async () => {
  const srv = await start('close', 60_000);
  const sock = srv.sockets()['w']!;
  const s = await openStream(sock);
  assert.equal(s.first, 'data');
  await srv.close();
  assert.equal(await s.done, grpc.status.UNAVAILABLE);
  assert.ok(!fs.existsSync(sock));
  await srv.close(); // idempotent
});
