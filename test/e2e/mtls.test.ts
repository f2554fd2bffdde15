/**
 * End-to-end mTLS between real processes (issue 2): `spike-agent` runs as a child process and
 * serves two identities on two sockets; a server process (fixtures/mtls-server) and client
 * processes (fixtures/mtls-client) get their SVIDs from it over the Workload API and talk
 * mTLS through src/spiffe/tls/. SVIDs live 2 s, so they rotate every second (half-life).
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { REPO_ROOT, spawnBin } from '../helpers/bin.js';
import { issueLeaf } from '../helpers/pki.js';

const TD = 'e2e.test';
const SERVER_ID = `spiffe://${TD}/server`;
const CLIENT_ID = `spiffe://${TD}/client`;
const FIXTURES = path.join(REPO_ROOT, 'dist', 'test', 'e2e', 'fixtures');

type Line = Record<string, unknown>;

/** A child process whose stdout JSON lines are collected. */
class Child {
  readonly lines: Line[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout?.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(l) as Line);
        } catch {
          // not a protocol line (e.g. a log line): ignore
        }
      }
      this.poke();
    });
    proc.stderr?.on('data', (c: Buffer) => {
      this.stderr += c.toString('utf8');
      this.poke();
    });
    proc.on('exit', () => this.poke());
  }
  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves when `pred` holds (checked on every output), rejects after `ms`. */
  async until<T>(pred: () => T | undefined | false, ms: number, what: string): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`${what}: process exited (${this.proc.exitCode ?? this.proc.signalCode}); stderr: ${this.stderr.slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: timed out; stderr: ${this.stderr.slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }
  events(name: string): Line[] {
    return this.lines.filter((l) => l['event'] === name);
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(t);
  }
}

let dir: string;
let agent: Child;
let server: Child;
let port: number;
const children: Child[] = [];

function fixture(name: string, args: string[], identity: string, logLevel = 'warn', stdin: 'ignore' | 'pipe' = 'ignore'): Child {
  const proc = spawn(process.execPath, [path.join(FIXTURES, `${name}.js`), ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'] ?? '',
      SPIFFE_ENDPOINT_SOCKET: `unix://${path.join(dir, 's', `${identity}.sock`)}`,
      SPIKE_SYSTEM_LOG_LEVEL: logLevel,
    },
  });
  const c = new Child(proc);
  children.push(c);
  return c;
}

/** Runs a client process to completion and returns its one result line. */
async function runClient(args: string[], identity = 'client'): Promise<Line> {
  const c = fixture('mtls-client', args, identity);
  const line = await c.until(() => c.lines[0], 60_000, 'client result');
  await c.stop();
  return line;
}

/** The serial of the certificate the server presents to a brand-new connection (client side). */
function serverSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    // No client certificate: under TLS 1.3 the server's certificate is already known at
    // secureConnect; the server refuses the connection right after.
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    s.on('secureConnect', () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtls-e2e-'));
  agent = new Child(spawnBin('spike-agent', [
    '--trust-domain', TD,
    '--state-dir', path.join(dir, 'state'),
    '--socket-dir', path.join(dir, 's'),
    // Short-lived SVIDs, re-issued at half-life: 8 s leaves a process 4 s to pick up the new one,
    // which a loaded machine needs (with 2 s, a starved client presented an expired SVID).
    '--svid-ttl', '8s',
    '--identity', `server=${SERVER_ID}`,
    '--identity', `client=${CLIENT_ID}`,
  ], { env: { SPIKE_SYSTEM_LOG_LEVEL: 'warn' } }));
  children.push(agent);
  await agent.until(() => agent.stderr.includes('spike-agent ready'), 60_000, 'agent ready');
  // debug: the server's stderr then shows every refused handshake (tls_client_error).
  // SVIDs live 8 s and rotate at half-life: connections are recycled after 2 s, so none
  // outlives the client SVID it was made with (as in production: max age < TTL / 2).
  server = fixture('mtls-server', ['2000'], 'server', 'debug');
  const listening = await server.until(() => server.events('listening')[0], 60_000, 'server listening');
  port = listening['port'] as number;
});

after(async () => {
  for (const c of children.reverse()) await c.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('e2e: an mTLS request between two processes with agent-issued SVIDs succeeds; the server sees the client SPIFFE ID', async () => {
  const r = await runClient(['once', `https://127.0.0.1:${port}/v1/echo`, SERVER_ID]);
  assert.equal(r['ok'], true, JSON.stringify(r));
  assert.equal(r['status'], 200);
  assert.deepEqual(r['body'], { peer: CLIENT_ID });
  const req = await server.until(() => server.events('request').find((l) => l['url'] === '/v1/echo'), 30_000, 'request line');
  assert.equal(req['peer'], CLIENT_ID);
  assert.equal(req['method'], 'POST');
  assert.ok((req['bytes'] as number) > 0);
});

test('TLS-21 e2e: a client whose predicate does not match the server ID aborts before sending a body; the server never sees a request', async () => {
  const before = server.events('request').length;
  const r = await runClient(['once', `https://127.0.0.1:${port}/v1/must-not-arrive`, `spiffe://${TD}/spike/nexus`]);
  assert.equal(r['ok'], false);
  assert.equal(r['name'], 'PeerRejectedError');
  assert.equal(r['code'], 'tls_peer_rejected');
  assert.equal(r['reason'], 'unauthorized');
  assert.equal(r['bodyPulled'], false, 'the request body was never read');
  // A request sent afterwards shows up: the server's output is live, and nothing came before it.
  const ok = await runClient(['once', `https://127.0.0.1:${port}/v1/after`, SERVER_ID]);
  assert.equal(ok['ok'], true);
  await server.until(() => server.events('request').find((l) => l['url'] === '/v1/after'), 30_000, 'after line');
  const seen = server.events('request').slice(before).map((l) => l['url']);
  assert.deepEqual(seen, ['/v1/after']);
});

test('TLS-02 e2e: a self-signed client certificate claiming the client ID is refused at the handshake', async () => {
  const before = server.events('request').length;
  const refusedBefore = server.stderr.split('tls_client_error').length;
  const svidRejectsBefore = server.stderr.split('tls_peer_rejected').length;
  const leaf = await issueLeaf(undefined, { uris: [CLIENT_ID], selfSigned: true });
  const outcome = await new Promise<{ error?: string; response: string }>((resolve) => {
    let response = '';
    let error: string | undefined;
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      cert: leaf.pem,
      key: leaf.key.export({ format: 'pem', type: 'pkcs8' }), // test-only throwaway key
      rejectUnauthorized: false,
    });
    s.on('secureConnect', () => s.write('POST /v1/forged HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
    s.on('data', (c: Buffer) => { response += c.toString('latin1'); });
    s.on('error', (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message; });
    s.on('close', () => resolve({ ...(error ? { error } : {}), response }));
  });
  assert.equal(outcome.response, '', 'no HTTP response');
  // Under TLS 1.3 the client may see an alert, a reset or a plain close; the server's log says which.
  await server.until(() => server.stderr.split('tls_client_error').length > refusedBefore, 30_000, 'refused handshake logged');
  assert.equal(server.events('request').length, before);
  assert.equal(server.stderr.split('tls_peer_rejected').length, svidRejectsBefore, 'refused by OpenSSL at the handshake, not after it');
});

test('TLS-23 e2e: agent SVIDs (short TTL) rotate under keep-alive traffic: zero failed requests; new connections present a new serial', async () => {
  const serialBefore = await serverSerial();
  const svidEventsBefore = server.events('svid').length;
  const requestsBefore = server.events('request').length;
  // The client loops until its stdin ends; the test ends it once two rotations happened under
  // traffic and enough requests went through (conditions, not a wall-clock window).
  const client = fixture('mtls-client', ['loop', `https://127.0.0.1:${port}/r`, SERVER_ID, 'stdin'], 'client', 'warn', 'pipe');
  const requests = (): number => server.events('request').slice(requestsBefore).filter((l) => l['url'] === '/r').length;
  let svidsAtTraffic: number | undefined; // rotations before the traffic started do not count
  await server.until(() => {
    if (requests() === 0) return false;
    svidsAtTraffic ??= server.events('svid').length;
    return server.events('svid').length - svidsAtTraffic >= 2 && requests() > 20;
  }, 120_000, 'two SVID rotations under traffic');
  client.proc.stdin!.end();
  const r = await client.until(() => client.lines[0], 60_000, 'client result');
  await client.stop();
  const serialAfter = await serverSerial();
  assert.equal(r['failed'], 0, JSON.stringify(r));
  assert.ok((r['ok'] as number) > 20, `requests: ${String(r['ok'])}`);
  const rotations = server.events('svid').length - svidEventsBefore;
  assert.ok(rotations >= 2, `server SVID rotated ${rotations} times during the run`);
  assert.notEqual(serialAfter, serialBefore, 'a new connection shows the new certificate');
  const serials = new Set(server.events('svid').map((l) => l['serial']));
  assert.ok(serials.size >= 3);
});

test('malformed input e2e: garbage bytes and a stalled handshake never crash the server process; requests still work', async () => {
  const closed = (payload: Buffer | null): Promise<number> => new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1', () => { if (payload) s.write(payload); });
    s.on('error', () => { /* a reset is fine */ });
    s.resume(); // read, so the server's FIN is seen
    s.on('close', () => resolve(Date.now() - t0));
    setTimeout(() => { s.destroy(); reject(new Error('server did not close the connection')); }, 60_000).unref();
  });
  await closed(Buffer.from('\x16\x03\x01\x00\x05hello garbage \x00\xff'.repeat(50), 'latin1'));
  const stalled = await closed(null);
  assert.ok(stalled >= 900, `stalled handshake closed after the 1 s handshake timeout (${stalled} ms)`);
  assert.equal(server.proc.exitCode, null, 'server still running');
  const r = await runClient(['once', `https://127.0.0.1:${port}/v1/still-alive`, SERVER_ID]);
  assert.equal(r['ok'], true);
});
