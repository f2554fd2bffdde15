/**
 * A dead dev stack fails at once (issue 15): the real `spike` binary against a `.spike/`
 * folder whose agent is gone (a stale socket left by a killed agent, or no socket at all)
 * prints one stderr line "no Workload API at <socket>: is the agent running?" and exits 1,
 * instead of retrying until the source timeout; and the SDK with no Workload API configured
 * fails at once with a typed error (`WorkloadApiError`, code `workload_api_no_agent`).
 *
 * The source timeout is set to 60 s in every case. "At once" is a bound relative to the same
 * process doing nothing on the same machine just before and just after (`spike --version`, or
 * node importing the SDK): three times the slower of the two plus 3 s, at least 5 s, never over
 * 20 s. So a loaded machine does not blur it, and a retry loop of many seconds (let alone
 * 60 s) fails it; the measured times are printed for the record.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnBin, REPO_ROOT } from '../helpers/bin.js';

const SOURCE_TIMEOUT = { SPIKE_SPIFFE_SOURCE_TIMEOUT: '60s' };
const AT_MOST_MS = 20_000;

/** The "at once" bound for a run whose idle counterpart took `idleMs` (see the module comment). */
const atOnce = (idleMs: number): number => Math.min(AT_MOST_MS, Math.max(5_000, 3 * idleMs + 3_000));

/** Runs `measured`, with its idle counterpart just before and just after; `idle.ms` is the slower. */
async function bracketed(idleRun: () => Promise<Run>, measured: () => Promise<Run>): Promise<{ r: Run; idle: Run }> {
  const before = await idleRun();
  const r = await measured();
  const after = await idleRun();
  return { r, idle: before.ms >= after.ms ? before : after };
}

let root: string;

interface Run {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = cmd === 'spike'
      ? spawnBin('spike', args, { cwd, env })
      : spawn(process.execPath, args, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const kill = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out, err, ms: Date.now() - t0 });
    });
  });
}

/** Node importing the SDK and doing nothing else: the idle counterpart of the SDK runs. */
async function importOnly(sdk: string): Promise<Run> {
  const r = await run('node', ['--input-type=module', '-e', `await import(${JSON.stringify(sdk)});`], root, {});
  assert.equal(r.code, 0, r.err);
  return r;
}

/** A dev folder as `npm start` leaves it, whose agent was killed: its socket file stays behind. */
async function deadDevStack(name: string): Promise<{ cwd: string; sock: string }> {
  const cwd = path.join(root, name);
  const sockets = path.join(cwd, '.spike', 'sockets');
  fs.mkdirSync(sockets, { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(cwd, '.spike'), 0o700);
  fs.chmodSync(sockets, 0o700);
  fs.writeFileSync(path.join(cwd, '.spike', 'env'), 'SPIKE_NEXUS_API_URL=https://127.0.0.1:1\n', { mode: 0o600 });
  const sock = path.join(sockets, 'pilot.sock');
  // A process that listens on the socket and is then SIGKILLed: the file stays, nothing listens.
  const agent = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    agent.stdout.once('data', () => resolve());
    agent.once('exit', () => reject(new Error('stand-in agent exited early')));
  });
  const gone = new Promise((r) => agent.once('exit', r));
  agent.kill('SIGKILL');
  await gone;
  assert.ok(fs.lstatSync(sock).isSocket(), 'the stale socket file is still there');
  return { cwd, sock };
}

function oneLine(r: Run, re: RegExp): void {
  const lines = r.err.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `exactly one stderr line, got: ${JSON.stringify(r.err)}`);
  assert.match(lines[0]!, re);
  assert.equal(r.out, '', 'nothing on stdout');
}

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-fast-fail-'));
});

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test('dead dev stack, stale socket: one line "no Workload API at <socket>: is the agent running?", exit 1, at once', async () => {
  const { cwd, sock } = await deadDevStack('stale');
  for (const args of [['secret', 'get', 'secrets/db/creds'], ['secret', 'list'], ['policy', 'list']]) {
    const { r, idle } = await bracketed(() => run('spike', ['--version'], cwd, SOURCE_TIMEOUT), () => run('spike', args, cwd, SOURCE_TIMEOUT));
    process.stdout.write(`# spike ${args.join(' ')} against a stale socket: exit ${r.code} after ${r.ms} ms (spike --version: ${idle.ms} ms)\n`);
    assert.equal(r.code, 1, args.join(' '));
    oneLine(r, new RegExp(`^Error: no Workload API at unix://${sock.replace(/[.]/g, '\\.')}: is the agent running\\?`));
    assert.ok(r.ms < atOnce(idle.ms), `${args.join(' ')} took ${r.ms} ms, spike --version ${idle.ms} ms (the retry loop would take 60 s)`);
  }
});

test('dev folder with no agent socket at all: the same line for the address used, at once', async () => {
  const { cwd, sock } = await deadDevStack('nosock');
  fs.rmSync(sock);
  const { r, idle } = await bracketed(() => run('spike', ['--version'], cwd, SOURCE_TIMEOUT), () => run('spike', ['secret', 'get', 'a/b', '--socket', sock], cwd, SOURCE_TIMEOUT));
  process.stdout.write(`# spike secret get with no socket file: exit ${r.code} after ${r.ms} ms (spike --version: ${idle.ms} ms)\n`);
  assert.equal(r.code, 1);
  oneLine(r, new RegExp(`^Error: no Workload API at unix://${sock.replace(/[.]/g, '\\.')}: is the agent running\\?`));
  assert.ok(r.ms < atOnce(idle.ms), `took ${r.ms} ms, spike --version ${idle.ms} ms`);
});

test('SDK with no Workload API configured: NexusClient.connect rejects at once with a typed error', async (t) => {
  if (fs.existsSync('/tmp/spire-agent/public/api.sock')) {
    t.skip('a Workload API socket exists at the standard default path on this machine');
    return;
  }
  const sdk = path.join(REPO_ROOT, 'dist', 'src', 'sdk', 'index.js');
  const script = `
    const { NexusClient } = await import(${JSON.stringify(sdk)});
    const t0 = Date.now();
    try {
      await NexusClient.connect({ env: ${JSON.stringify(SOURCE_TIMEOUT)} });
      console.log(JSON.stringify({ connected: true }));
    } catch (e) {
      console.log(JSON.stringify({ name: e.constructor.name, code: e.code, message: e.message, ms: Date.now() - t0 }));
    }`;
  const { r, idle } = await bracketed(() => importOnly(sdk), () => run('node', ['--input-type=module', '-e', script], root, {}));
  assert.equal(r.code, 0, r.err);
  const got = JSON.parse(r.out.trim()) as { name: string; code: string; message: string; ms: number };
  process.stdout.write(`# NexusClient.connect with no socket configured: ${got.code} after ${got.ms} ms\n`);
  assert.equal(got.name, 'WorkloadApiError');
  assert.equal(got.code, 'workload_api_no_agent');
  assert.match(got.message, /^no Workload API at unix:\/\/\/tmp\/spire-agent\/public\/api\.sock: is the agent running\? \(SPIFFE_ENDPOINT_SOCKET is not set/);
  assert.ok(got.ms < atOnce(idle.ms), `took ${got.ms} ms, importing the SDK ${idle.ms} ms (the source timeout is 60 s)`);
});

test("SDK with svid: 'once' and a stale socket: rejects at once with workload_api_no_agent", async () => {
  const { sock } = await deadDevStack('sdk-stale');
  const sdk = path.join(REPO_ROOT, 'dist', 'src', 'sdk', 'index.js');
  const script = `
    const { NexusClient } = await import(${JSON.stringify(sdk)});
    try {
      await NexusClient.connect({ endpoint: ${JSON.stringify(`unix://${sock}`)}, svid: 'once', env: ${JSON.stringify(SOURCE_TIMEOUT)} });
      console.log(JSON.stringify({ connected: true }));
    } catch (e) {
      console.log(JSON.stringify({ code: e.code }));
    }`;
  const { r, idle } = await bracketed(() => importOnly(sdk), () => run('node', ['--input-type=module', '-e', script], root, {}));
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out.trim()) as { code: string }).code, 'workload_api_no_agent');
  assert.ok(r.ms < atOnce(idle.ms), `took ${r.ms} ms, importing the SDK ${idle.ms} ms`);
});
