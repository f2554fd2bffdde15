/**
 * spike-agent as a real child process (bin/spike-agent.js → dist): identities per socket,
 * the security header, rotation on the open stream, hostile input, file modes, shutdown.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { REPO_ROOT, spawnBin } from '../helpers/bin.js';
import { createLogger } from '../../src/lib/log.js';
import { SpiffeId, TrustDomain } from '../../src/spiffe/id.js';
import { X509Bundle, X509BundleSet } from '../../src/spiffe/bundle.js';
import { verifyX509Svid } from '../../src/spiffe/verify.js';
import { WorkloadApiError, WorkloadX509Source, fetchX509BundlesOnce, fetchX509SvidOnce } from '../../src/spiffe/workloadapi/index.js';

const TD = TrustDomain.parse('spike.ist');
const NEXUS = 'spiffe://spike.ist/spike/nexus';
const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const silent = createLogger({ component: 'test', level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-e2e-'));
const children: ChildProcess[] = [];
const sources: WorkloadX509Source[] = [];

after(() => {
  for (const s of sources) s.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

interface Agent {
  child: ChildProcess;
  dir: string;
  socket(name: string): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Starts spike-agent in a fresh folder and waits for its ready line. */
async function startAgent(name: string, extraArgs: string[] = [], dir = path.join(root, name)): Promise<Agent> {
  fs.mkdirSync(dir, { recursive: true });
  const child = spawnBin('spike-agent', [
    '--state-dir', path.join(dir, 'state'),
    '--socket-dir', path.join(dir, 'sockets'),
    '--identity', `nexus=${NEXUS}`,
    '--identity', `pilot=${PILOT}`,
    ...extraArgs,
  ], { cwd: dir });
  children.push(child);
  let err = '';
  child.stdout!.resume();
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`spike-agent not ready in time; stderr: ${err}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('spike-agent ready\n')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`spike-agent exited ${code}; stderr: ${err}`));
    });
  });
  return { child, dir, socket: (n) => path.join(dir, 'sockets', `${n}.sock`), stderr: () => err, exited };
}

async function open(sock: string): Promise<WorkloadX509Source> {
  const s = await WorkloadX509Source.open({ endpoint: `unix://${sock}`, timeoutMs: 30_000, logger: silent });
  sources.push(s);
  return s;
}

const raw = (b: Buffer): Buffer => b;

/** One raw server-stream call; resolves with the final status (and how many messages came). */
function rawCall(sock: string, method: string, body: Buffer, md = new grpc.Metadata()): Promise<{ code: grpc.status; messages: number }> {
  const client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  return new Promise((resolve) => {
    let messages = 0;
    const call = client.makeServerStreamRequest(method, raw, raw, body, md, { deadline: Date.now() + 30_000 });
    call.on('data', () => {
      messages++;
      call.cancel(); // one message is enough to prove the stream works
    });
    call.on('error', () => {});
    call.on('status', (st: grpc.StatusObject) => {
      client.close();
      resolve({ code: st.code, messages });
    });
  });
}

function withHeader(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('workload.spiffe.io', 'true');
  return md;
}

let shared: Promise<Agent> | undefined;
const agent = (): Promise<Agent> => (shared ??= startAgent('main'));

test('two clients on two sockets get two different SVIDs that verify against the bundle', async () => {
  const a = await agent();
  const nexus = await open(a.socket('nexus'));
  const pilot = await open(a.socket('pilot'));
  const n = nexus.getX509Svid();
  const p = pilot.getX509Svid();
  assert.equal(n.id.toString(), NEXUS);
  assert.equal(p.id.toString(), PILOT);
  // Each verifies against the *other* client's bundle too: one trust domain, one CA.
  assert.ok(verifyX509Svid(n.certificates.map((c) => c.raw), pilot).equals(SpiffeId.parse(NEXUS)));
  assert.ok(verifyX509Svid(p.certificates.map((c) => c.raw), nexus).equals(SpiffeId.parse(PILOT)));
  // The bundle from FetchX509Bundles is the same CA, and it is the CA file on disk.
  const bundles = await fetchX509BundlesOnce({ endpoint: `unix://${a.socket('nexus')}`, timeoutMs: 30_000 });
  const onDisk = X509Bundle.fromPem(TD, fs.readFileSync(path.join(a.dir, 'state', 'ca.crt'), 'utf8'));
  assert.ok(bundles.get(TD)!.toDer().equals(onDisk.toDer()));
  assert.ok(verifyX509Svid([n.certificates[0]!.raw], new X509BundleSet([onDisk])).equals(SpiffeId.parse(NEXUS)));
});

test('two separate processes on two sockets get different SVIDs, and close() lets each exit by itself', async () => {
  const a = await agent();
  const script = [
    `const { WorkloadX509Source } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/spiffe/workloadapi/index.js'))});`,
    `const s = await WorkloadX509Source.open({ timeoutMs: 30000, logger: (await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/lib/log.js'))})).createLogger({ component: 'c', level: 'silent' }) });`,
    'const svid = s.getX509Svid();',
    'process.stdout.write(JSON.stringify({ id: svid.id.toString(), serial: svid.certificates[0].serialNumber }));',
    's.close();', // no process.exit: the process must end on its own
  ].join('\n');
  const run = (sock: string): Promise<{ code: number | null; out: string; ms: number }> => new Promise((resolve) => {
    const t0 = Date.now();
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env['PATH'] ?? '', SPIFFE_ENDPOINT_SOCKET: `unix://${sock}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(c);
    let out = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const kill = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.once('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
  const [n, p] = await Promise.all([run(a.socket('nexus')), run(a.socket('pilot'))]);
  assert.equal(n.code, 0, 'nexus client exited by itself');
  assert.equal(p.code, 0, 'pilot client exited by itself');
  const nj = JSON.parse(n.out) as { id: string; serial: string };
  const pj = JSON.parse(p.out) as { id: string; serial: string };
  assert.equal(nj.id, NEXUS);
  assert.equal(pj.id, PILOT);
  assert.notEqual(nj.serial, pj.serial);
});

test('a client without the workload.spiffe.io header gets InvalidArgument (3) on every RPC', async () => {
  const a = await agent();
  const sock = a.socket('nexus');
  for (const m of ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTSVID', 'FetchJWTBundles', 'ValidateJWTSVID']) {
    const r = await rawCall(sock, `/SpiffeWorkloadAPI/${m}`, Buffer.alloc(0));
    assert.equal(r.code, grpc.status.INVALID_ARGUMENT, m);
    assert.equal(r.messages, 0, `${m}: nothing sent without the header`);
  }
  const wrong = new grpc.Metadata();
  wrong.set('workload.spiffe.io', 'True');
  assert.equal((await rawCall(sock, '/SpiffeWorkloadAPI/FetchX509SVID', Buffer.alloc(0), wrong)).code, grpc.status.INVALID_ARGUMENT);
  const twice = withHeader();
  twice.add('workload.spiffe.io', 'true');
  assert.equal((await rawCall(sock, '/SpiffeWorkloadAPI/FetchX509SVID', Buffer.alloc(0), twice)).code, grpc.status.INVALID_ARGUMENT);
  // With the header the same raw call streams an SVID.
  assert.equal((await rawCall(sock, '/SpiffeWorkloadAPI/FetchX509SVID', Buffer.alloc(0), withHeader())).messages, 1);
});

test('malformed input never crashes the agent: garbage bytes, unknown RPCs, oversized and undecodable messages', async () => {
  const a = await agent();
  const sock = a.socket('pilot');
  // Garbage on the socket, a truncated HTTP/2 preface, and a preface followed by junk frames.
  for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from([0xff, 0x00, 0x13, 0x37]).subarray(0, 4),
    Buffer.from('PRI * HTTP/2.0\r\n'), Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(64, 0xff)])]) {
    await new Promise<void>((resolve) => {
      const s = net.createConnection(sock, () => s.end(bytes));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
      s.setTimeout(2_000, () => s.destroy());
    });
  }
  // A connection that opens and goes silent, left open while the rest runs.
  const idle = net.createConnection(sock);
  idle.on('error', () => {});
  assert.equal((await rawCall(sock, '/SpiffeWorkloadAPI/NoSuchMethod', Buffer.alloc(0), withHeader())).code, grpc.status.UNIMPLEMENTED);
  assert.equal((await rawCall(sock, '/spiffe.workload.SpiffeWorkloadAPI/FetchX509SVID', Buffer.alloc(0), withHeader())).code, grpc.status.UNIMPLEMENTED);
  for (const m of ['FetchJWTSVID', 'FetchJWTBundles', 'ValidateJWTSVID']) {
    assert.equal((await rawCall(sock, `/SpiffeWorkloadAPI/${m}`, Buffer.alloc(0), withHeader())).code, grpc.status.UNIMPLEMENTED, m);
  }
  const big = await rawCall(sock, '/SpiffeWorkloadAPI/FetchX509SVID', Buffer.alloc(1024 * 1024, 0x0a), withHeader());
  assert.equal(big.code, grpc.status.RESOURCE_EXHAUSTED);
  const junk = await rawCall(sock, '/SpiffeWorkloadAPI/FetchX509SVID', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), withHeader());
  assert.notEqual(junk.code, grpc.status.OK);
  assert.equal(junk.messages, 0);
  idle.destroy();
  // Still alive, and a normal client still gets its SVID.
  assert.equal(a.child.exitCode, null);
  const svid = await fetchX509SvidOnce({ endpoint: `unix://${sock}`, timeoutMs: 30_000 });
  assert.equal(svid.id.toString(), PILOT);
  assert.equal(a.child.exitCode, null);
});

test('file modes: socket and key files 0600, their folders 0700', async () => {
  const a = await agent();
  const mode = (p: string): number => fs.statSync(p).mode & 0o777;
  assert.equal(mode(path.join(a.dir, 'state')), 0o700);
  assert.equal(mode(path.join(a.dir, 'state', 'ca.key')), 0o600);
  assert.equal(mode(path.join(a.dir, 'sockets')), 0o700);
  for (const n of ['nexus', 'pilot']) {
    assert.ok(fs.statSync(a.socket(n)).isSocket());
    assert.equal(mode(a.socket(n)), 0o600);
  }
});

test('rotation: with a 2 s TTL the open stream delivers new SVIDs with new serials', async () => {
  const a = await startAgent('rotation', ['--svid-ttl', '2s']);
  const src = await open(a.socket('nexus'));
  const serials = [src.getX509Svid().certificates[0]!.serialNumber];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${serials.length - 1} updates`)), 60_000);
    src.on('update', () => {
      serials.push(src.getX509Svid().certificates[0]!.serialNumber);
      if (serials.length >= 3) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  assert.equal(new Set(serials).size, serials.length, 'every update carries a new serial');
  for (const s of [src.getX509Svid()]) {
    assert.ok(verifyX509Svid(s.certificates.map((c) => c.raw), src).equals(SpiffeId.parse(NEXUS)));
    assert.ok(s.notAfter.getTime() - Date.now() <= 2_000);
  }
  a.child.kill('SIGTERM');
  assert.equal(await a.exited, 0);
});

test('open with timeoutMs where nothing listens rejects with workload_api_unavailable naming the socket', async () => {
  const sock = path.join(root, 'nobody.sock');
  await assert.rejects(WorkloadX509Source.open({ endpoint: `unix://${sock}`, timeoutMs: 500, logger: silent }), (e: unknown) =>
    e instanceof WorkloadApiError && e.code === 'workload_api_unavailable' && e.message.includes(sock));
});

test('SIGTERM removes the sockets and exits 0; a restart reuses the CA; a second agent on live sockets is refused', async () => {
  const dir = path.join(root, 'restart');
  const a1 = await startAgent('restart', [], dir);
  const b1 = await fetchX509BundlesOnce({ endpoint: `unix://${a1.socket('nexus')}`, timeoutMs: 30_000 });
  // A second agent on the same sockets must not steal them.
  const dup = spawnBin('spike-agent', ['--state-dir', path.join(dir, 'state'), '--socket-dir', path.join(dir, 'sockets'), '--identity', `nexus=${NEXUS}`], { cwd: dir });
  children.push(dup);
  let dupErr = '';
  dup.stderr!.on('data', (d: Buffer) => { dupErr += d.toString(); });
  dup.stdout!.resume();
  const dupCode = await new Promise<number | null>((res) => dup.once('exit', (c) => res(c)));
  assert.equal(dupCode, 1);
  assert.match(dupErr, /served by another process/);
  assert.ok(fs.existsSync(a1.socket('nexus')), 'the live socket was left alone');

  a1.child.kill('SIGTERM');
  assert.equal(await a1.exited, 0);
  assert.ok(!fs.existsSync(a1.socket('nexus')) && !fs.existsSync(a1.socket('pilot')), 'socket files removed');

  const a2 = await startAgent('restart', [], dir);
  const b2 = await fetchX509BundlesOnce({ endpoint: `unix://${a2.socket('nexus')}`, timeoutMs: 30_000 });
  assert.ok(b1.get(TD)!.toDer().equals(b2.get(TD)!.toDer()), 'same CA after restart');
  a2.child.kill('SIGINT');
  assert.equal(await a2.exited, 0);
});

test('--help documents the config file; a bad configuration exits 2 with a one-line reason', async () => {
  const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const c = spawnBin('spike-agent', args, { cwd: root });
    children.push(c);
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    c.once('close', (code) => resolve({ code, out, err }));
  });
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  for (const k of ['trustDomain', 'stateDir', 'socketDir', 'svidTtl', 'identities', '--identity', '--config']) assert.ok(help.out.includes(k), k);
  const bad = await run(['--identity', 'x=spiffe://other.org/x', '--socket-dir', path.join(root, 'bad')]);
  assert.equal(bad.code, 2);
  assert.equal(bad.err.trim().split('\n').length, 1);
  assert.match(bad.err, /trust domain/);
  const none = await run(['--socket-dir', path.join(root, 'bad')]);
  assert.equal(none.code, 2);
  assert.match(none.err, /no identities/);
});
