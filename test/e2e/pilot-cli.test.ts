/**
 * The real `spike` binary with a real `spike-agent` (Workload API over unix sockets, real
 * SVIDs, real mTLS) and no Nexus: what Pilot does before and around Nexus.
 *
 * - dev-stack defaults: run in a folder with `./.spike/sockets/*.sock` and `./.spike/env`,
 *   `spike` finds its identity and the Nexus URL with no setup; recover/restore pick their
 *   role sockets;
 * - role gates with the real SVIDs;
 * - TLS-21 end to end: a server holding a valid SVID of another identity gets no request byte
 *   (the secret on the command line never leaves the process);
 * - the error contract (D15): one line on stderr, non-zero exit, nothing on stdout; when Nexus
 *   cannot be reached or trusted the line names the URL and the cause class (connection
 *   refused, timeout, TLS: server ID not accepted, TLS: chain not trusted, Workload API
 *   unreachable — issue 11 part 5);
 * - gaps B15: `--help` is instant even without any agent.
 * End-to-end tests against a real Nexus (put/get/… round trips, recovery drill) are in
 * pilot-nexus.test.ts, pilot-devstack.test.ts and operator-drill.test.ts.
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { spawnBin } from '../helpers/bin.js';
import { WorkloadX509Source } from '../../src/spiffe/workloadapi/index.js';
import { createMtlsServer, type MtlsServer } from '../../src/spiffe/tls/index.js';
import { createLogger } from '../../src/lib/log.js';

const TD = 'spike.ist';
let cwd: string;
let agent: ChildProcess;
let agentErr = '';
let wrongServer: MtlsServer | undefined;
let wrongSource: WorkloadX509Source | undefined;
let wrongSeen = 0;
let deadUrl: string;

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function spike(args: string[], o: { stdin?: string; env?: Record<string, string>; dir?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawnBin('spike', args, { cwd: o.dir ?? cwd, env: o.env ?? {}, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    p.stdin?.end(o.stdin ?? '');
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

function oneErrorLine(r: Run, re: RegExp): void {
  const lines = r.err.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `exactly one stderr line, got ${JSON.stringify(r.err)}`);
  assert.match(lines[0]!, re);
  assert.ok(!r.err.includes('    at '), 'no stack trace');
  assert.notEqual(r.code, 0, 'non-zero exit (D15; SPIKE exits 0: gaps B14)');
  assert.equal(r.out, '', 'nothing on stdout');
}

function writeEnv(url: string): void {
  fs.writeFileSync(path.join(cwd, '.spike', 'env'), `SPIKE_NEXUS_API_URL=${url}\n`, { mode: 0o600 });
}

before(async () => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-e2e-'));
  agent = spawnBin(
    'spike-agent',
    [
      '--trust-domain', TD,
      '--svid-ttl', '10m',
      '--identity', `pilot=spiffe://${TD}/spike/pilot/role/superuser`,
      '--identity', `recover=spiffe://${TD}/spike/pilot/role/recover`,
      '--identity', `restore=spiffe://${TD}/spike/pilot/role/restore`,
      '--identity', `workload=spiffe://${TD}/app/workload`,
    ],
    { cwd, env: { SPIKE_SYSTEM_LOG_LEVEL: 'error' } },
  );
  agent.stderr?.on('data', (c: Buffer) => (agentErr += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!agentErr.includes('spike-agent ready')) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`agent did not start: ${agentErr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  deadUrl = `https://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  await new Promise<void>((r) => srv.close(() => r()));
  writeEnv(deadUrl);
});

after(async () => {
  await wrongServer?.close();
  wrongSource?.close();
  if (agent.exitCode === null) {
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(cwd, { recursive: true, force: true });
});

test('B15: --help is instant and needs no agent; usage errors exit 2 with one line', async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-e2e-empty-'));
  try {
    const t0 = Date.now();
    const h = await spike(['--help'], { dir: empty, env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///nonexistent/agent.sock' } });
    assert.equal(h.code, 0);
    assert.match(h.out, /Usage: spike/);
    // Needing no agent is shown by the exit 0 with a socket that does not exist; the bound only
    // catches a hang (a process start takes seconds on a loaded machine).
    assert.ok(Date.now() - t0 < 30_000);
    const u = await spike(['secret', 'put', 'a/b', 'password:s3cret'], { dir: empty });
    oneErrorLine(u, /^Error: Invalid key-value pair \(argument 2\): expected key=value\.$/);
    assert.equal(u.code, 2);
    assert.ok(!u.err.includes('s3cret'));
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('dev defaults: ./.spike/sockets/pilot.sock and ./.spike/env are used with no setup; the error names the URL and the cause', async () => {
  const r = await spike(['secret', 'list']);
  oneErrorLine(r, new RegExp(`^Error: Cannot reach SPIKE Nexus at ${deadUrl.replace(/[.]/g, '\\.')} \\(connection refused\\)\\.$`));
  assert.equal(r.code, 1);
  const env = await spike(['env']);
  assert.equal(env.code, 0);
  assert.equal(env.err, '');
  assert.equal(
    env.out,
    `SPIFFE Workload API: unix://${path.join(cwd, '.spike', 'sockets', 'pilot.sock')} (source: dev stack hint at ${path.join(cwd, '.spike', 'sockets', 'pilot.sock')})\n` +
      `SPIKE Nexus URL: ${deadUrl} (source: dev stack hint at ${path.join(cwd, '.spike', 'env')})\n`,
  );
});

test('role gates with real SVIDs: recover/restore use their sockets; the wrong identity gets a clear line', async () => {
  const recDir = path.join(cwd, 'shards');
  const rec = await spike(['operator', 'recover', '--dir', recDir]);
  oneErrorLine(rec, /^Error: Failed to retrieve recovery shards: cannot reach SPIKE Nexus at https:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
  assert.deepEqual(fs.readdirSync(recDir), [], 'no file written when recover fails');
  const shard = `spike:1:${'0f'.repeat(32)}\n`;
  const res = await spike(['operator', 'restore'], { stdin: shard });
  oneErrorLine(res, /^Error: Cannot reach SPIKE Nexus at https:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
  const wrong = await spike(['--socket', 'pilot', 'operator', 'restore'], { stdin: shard });
  oneErrorLine(wrong, /^Error: This command needs the spiffe:\/\/spike\.ist\/spike\/pilot\/role\/restore identity, but this process is spiffe:\/\/spike\.ist\/spike\/pilot\/role\/superuser \(dev stack: --socket restore\)\.$/);
  assert.ok(!wrong.err.includes('0f0f'));
  // secret/policy/cipher are not gated by role in the CLI: a workload goes on to Nexus (dead here)
  const wl = await spike(['secret', 'get', 'a/b', '--socket', 'workload']);
  oneErrorLine(wl, /^Error: Cannot reach SPIKE Nexus at https:\/\/127\.0\.0\.1:\d+ \(connection refused\)\.$/);
  const wlRec = await spike(['operator', 'recover', '--out', path.join(cwd, 'wl-shards'), '--socket', 'workload']);
  oneErrorLine(wlRec, /needs the spiffe:\/\/spike\.ist\/spike\/pilot\/role\/recover identity, but this process is spiffe:\/\/spike\.ist\/app\/workload/);
  // off the dev stack (this .spike was not made by npm start) recover asks for --out
  const noOut = await spike(['operator', 'recover'], { env: { HOME: path.join(cwd, 'home') } });
  oneErrorLine(noOut, /^Error: Say where the recovery shards go: --out <dir> \(or set SPIKE_PILOT_RECOVERY_DIR\) \(not using the dev stack folder: .*\.spike /);
  assert.equal(noOut.code, 2);
  assert.equal(fs.existsSync(path.join(cwd, 'home')), false, 'nothing written under $HOME');
});

test('TLS-21 end to end: a server with a valid SVID that is not Nexus receives nothing', async () => {
  wrongSource = await WorkloadX509Source.open({
    endpoint: `unix://${path.join(cwd, '.spike', 'sockets', 'workload.sock')}`,
    timeoutMs: 10_000,
    logger: createLogger({ component: 'test', level: 'silent' }),
  });
  wrongServer = createMtlsServer({
    source: wrongSource,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'test', level: 'silent' }),
    handler: (_req, res) => {
      wrongSeen++;
      res.end('{}');
    },
  });
  await wrongServer.listen();
  writeEnv(`https://127.0.0.1:${wrongServer.port}`);
  try {
    const r = await spike(['secret', 'put', 'a/b', 'password=s3cret']);
    oneErrorLine(r, new RegExp(`^Error: Cannot trust SPIKE Nexus at https://127\\.0\\.0\\.1:${wrongServer.port} \\(TLS: server ID not accepted\\); nothing was sent\\.$`));
    assert.equal(wrongSeen, 0, 'no request reached the impostor');
  } finally {
    writeEnv(deadUrl);
  }
});

test('several Nexus URLs: all down → one line, exit 1', async () => {
  const r = await spike(['secret', 'list'], { env: { SPIKE_NEXUS_API_URL: `${deadUrl},${deadUrl.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) === 65535 ? 1 : Number(p) + 1}`)}` } });
  oneErrorLine(r, /^Error: Cannot (reach|trust) SPIKE Nexus at https:\/\/127\.0\.0\.1:\d+ \(connection refused\), https:\/\/127\.0\.0\.1:\d+ \(.+\)/);
});

test('error lines name where and why: chain not trusted (Nexus SVID from another CA), timeout, Workload API unreachable', async () => {
  // A second spike-agent has its own CA: its "Nexus" SVID does not chain to our bundle.
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-e2e-other-'));
  const other = spawnBin('spike-agent', ['--trust-domain', TD, '--identity', `nexus=spiffe://${TD}/spike/nexus`], { cwd: otherDir, env: { SPIKE_SYSTEM_LOG_LEVEL: 'error' } });
  let otherErr = '';
  other.stderr?.on('data', (c: Buffer) => (otherErr += c.toString()));
  let impostor: MtlsServer | undefined;
  let impostorSource: WorkloadX509Source | undefined;
  const silent = net.createServer(() => undefined); // accepts TCP, never speaks TLS
  const mute = net.createServer((s) => s.destroy()); // a unix socket that is not a Workload API
  try {
    const deadline = Date.now() + 20_000;
    while (!otherErr.includes('spike-agent ready')) {
      if (Date.now() > deadline || other.exitCode !== null) throw new Error(`second agent did not start: ${otherErr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    impostorSource = await WorkloadX509Source.open({
      endpoint: `unix://${path.join(otherDir, '.spike', 'sockets', 'nexus.sock')}`,
      timeoutMs: 10_000,
      logger: createLogger({ component: 'test', level: 'silent' }),
    });
    let seen = 0;
    impostor = createMtlsServer({
      source: impostorSource,
      host: '127.0.0.1',
      port: 0,
      logger: createLogger({ component: 'test', level: 'silent' }),
      handler: (_req, res) => {
        seen++;
        res.end('{}');
      },
    });
    await impostor.listen();
    const untrusted = await spike(['secret', 'put', 'a/b', 'password=s3cret'], {
      env: { SPIKE_NEXUS_API_URL: `https://127.0.0.1:${impostor.port}` },
    });
    oneErrorLine(untrusted, new RegExp(`^Error: Cannot trust SPIKE Nexus at https://127\\.0\\.0\\.1:${impostor.port} \\(TLS: chain not trusted: [A-Za-z_]+\\); nothing was sent\\.$`));
    assert.equal(seen, 0, 'nothing reached the server');
    assert.ok(!untrusted.err.includes('s3cret'));
    // The launcher runs spike as `node --use-openssl-ca` (issue 15), which makes Node's DEFAULT
    // trust store the system one (SSL_CERT_FILE): with the impostor's CA placed there, a context
    // without a `ca` list trusts the impostor (the plain-Node control below), spike's must not.
    const sysCa = path.join(otherDir, 'system-ca.pem');
    fs.writeFileSync(sysCa, impostorSource.bundleSet().allAuthorities().map((c) => c.toString()).join('\n'));
    // (async: the impostor is served by this process)
    const control = await new Promise<{ out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, ['--use-openssl-ca', '-e',
        `const s = require('node:tls').connect({ host: '127.0.0.1', port: ${impostor!.port}, rejectUnauthorized: false, checkServerIdentity: () => undefined }, () => { process.stdout.write(String(s.authorized)); s.destroy(); });`,
      ], { env: { SSL_CERT_FILE: sysCa }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString()));
      c.stderr.on('data', (b: Buffer) => (err += b.toString()));
      c.once('close', () => resolve({ out, err }));
    });
    assert.equal(control.out, 'true', `control: the system store given by SSL_CERT_FILE is in effect (${control.err})`);
    const sysStore = await spike(['secret', 'put', 'a/b', 'password=s3cret'], {
      env: { SPIKE_NEXUS_API_URL: `https://127.0.0.1:${impostor.port}`, SSL_CERT_FILE: sysCa },
    });
    oneErrorLine(sysStore, new RegExp(`^Error: Cannot trust SPIKE Nexus at https://127\\.0\\.0\\.1:${impostor.port} \\(TLS: chain not trusted: [A-Za-z_]+\\); nothing was sent\\.$`));
    assert.equal(seen, 0, 'nothing reached the server');

    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentUrl = `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const slow = await spike(['secret', 'list'], { env: { SPIKE_NEXUS_API_URL: silentUrl, SPIKE_HTTP_CLIENT_TLS_HANDSHAKE_TIMEOUT: '1s', SPIKE_HTTP_CLIENT_TIMEOUT: '3s' } });
    oneErrorLine(slow, new RegExp(`^Error: Cannot reach SPIKE Nexus at ${silentUrl.replace(/[.]/g, '\\.')} \\(timeout\\)\\.$`));

    const noSocket = await spike(['secret', 'list'], { env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///nonexistent/spire/api.sock' } });
    oneErrorLine(noSocket, /^Error: no Workload API at unix:\/\/\/nonexistent\/spire\/api\.sock: is the agent running\? /);
    const muteSock = path.join(otherDir, 'mute.sock');
    await new Promise<void>((r) => mute.listen(muteSock, r));
    const noAnswer = await spike(['secret', 'list'], { env: { SPIFFE_ENDPOINT_SOCKET: `unix://${muteSock}`, SPIKE_SPIFFE_SOURCE_TIMEOUT: '1s' } });
    oneErrorLine(noAnswer, new RegExp(`^Error: Cannot get an identity from the SPIFFE Workload API at unix://${muteSock.replace(/[.]/g, '\\.')} \\(Workload API unreachable\\): `));
  } finally {
    await impostor?.close();
    impostorSource?.close();
    silent.close();
    mute.close();
    if (other.exitCode === null) {
      const exited = new Promise((r) => other.once('exit', r));
      other.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(otherDir, { recursive: true, force: true });
  }
});
