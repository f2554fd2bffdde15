/**
 * `spike` against the real dev stack (`npm start` → agent, 3 Keepers, Nexus on SQLite,
 * Bootstrap), run from the same folder with no setup (issue 5 point 6; issue 6 CLI parts):
 * put/get/list straight after `npm start`, and operator recover to files + verify-shard.
 * The full secret/policy/cipher command set runs against a test stack in pilot-nexus.test.ts.
 *
 * `npm start` exports recovery shards right after bootstrap, so this file runs once the Nexus
 * operator routes exist (until then the route module is a stub that registers nothing, and
 * the tests skip with that reason).
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChildProcess, spawn } from 'node:child_process';
import { spawnBin, REPO_ROOT } from '../helpers/bin.js';
import { freePort } from '../helpers/ports.js';
import { operatorRoutes } from '../../src/nexus/routes/operator.js';
import type { NexusContext } from '../../src/nexus/context.js';

/** True when a route module is still the stub that registers nothing. */
function isStub(mod: (ctx: NexusContext) => unknown[]): boolean {
  try {
    return mod({} as NexusContext).length === 0;
  } catch {
    return false; // a real module touches its context
  }
}
// `npm start` itself exports recovery shards after bootstrap, so nothing runs before the
// operator routes exist.
const DEV_STACK = isStub(operatorRoutes) && 'Nexus operator routes (needed by `npm start`) not built yet';
const SKIP = { operator: DEV_STACK };
const ANY = !DEV_STACK;

let cwd: string;
let dev: ChildProcess | undefined;
let devOut = '';
let nexusUrl = '';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

function spike(args: string[], o: { stdin?: string | Buffer } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawnBin('spike', args, { cwd, env: {}, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout?.on('data', (c: Buffer) => out.push(c));
    p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    p.stdin?.end(o.stdin ?? '');
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out: Buffer.concat(out).toString('latin1'), err });
    });
  });
}

async function ok(args: string[], o: { stdin?: string | Buffer } = {}): Promise<string> {
  const r = await spike(args, o);
  assert.equal(r.err, '', `${args.join(' ')}: stderr ${r.err}`);
  assert.equal(r.code, 0, args.join(' '));
  return r.out;
}

async function fails(args: string[], re: RegExp): Promise<void> {
  const r = await spike(args);
  assert.notEqual(r.code, 0, args.join(' '));
  assert.equal(r.out, '');
  const lines = r.err.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0]!, re);
}

before(async () => {
  if (!ANY) return;
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-dev-'));
  const [n, k1, k2, k3] = [await freePort(), await freePort(), await freePort(), await freePort()];
  nexusUrl = `https://127.0.0.1:${n}`;
  dev = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'spike-dev.js')], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    // SPIKE_DEV_DIR names the default folder, so the banner must carry it while `spike` run in
    // this folder with no setup still finds the stack.
    env: { PATH: process.env['PATH'] ?? '', HOME: cwd, SPIKE_DEV_DIR: path.join(cwd, '.spike'), SPIKE_DEV_NEXUS_PORT: String(n), SPIKE_DEV_KEEPER_PORTS: `${k1},${k2},${k3}` },
  });
  dev.stdout?.on('data', (c: Buffer) => (devOut += c.toString()));
  dev.stderr?.on('data', (c: Buffer) => (devOut += c.toString()));
  const deadline = Date.now() + 120_000;
  while (!devOut.includes('SPIKE ready')) {
    if (Date.now() > deadline || dev.exitCode !== null) throw new Error(`dev stack did not start:\n${devOut.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((r) => dev!.once('exit', r));
    dev.kill('SIGTERM');
    const t = setTimeout(() => dev!.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
  if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
});

test('npm start, then from another terminal in the same folder: secret put / get with no setup', { skip: DEV_STACK }, async () => {
  assert.equal(await ok(['secret', 'put', 'secrets/db/creds', 'username=admin', 'password=s3cret']), 'OK: wrote secret secrets/db/creds (version 1).\n');
  assert.equal(await ok(['secret', 'get', 'secrets/db/creds']), 'password: s3cret\nusername: admin\n');
  assert.equal(await ok(['secret', 'list']), '- secrets/db/creds\n');
});

test('spike env names the dev stack hint it uses (socket and loopback Nexus URL), contacting nothing', { skip: DEV_STACK }, async () => {
  const dir = path.join(cwd, '.spike');
  assert.equal(
    await ok(['env']),
    `SPIFFE Workload API: unix://${path.join(dir, 'sockets', 'pilot.sock')} (source: dev stack hint at ${path.join(dir, 'sockets', 'pilot.sock')})\n` +
      `SPIKE Nexus URL: ${nexusUrl} (source: dev stack hint at ${path.join(dir, 'env')})\n`,
  );
  assert.match(await ok(['env', '--role', 'restore']), /sockets\/restore\.sock \(source: dev stack hint/);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'npm start made its folder 0700');
  assert.equal(fs.statSync(path.join(dir, 'dev-stack.marker')).mode & 0o777, 0o600, 'with its marker');
});

test('operator recover writes 0600 files in a 0700 dir; verify-shard checks them offline', { skip: SKIP.operator }, async () => {
  const dir = path.join(cwd, 'shards');
  const out = await ok(['operator', 'recover', '--dir', dir]);
  assert.match(out, /SPIKE recovery shards saved to the recovery directory:/);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt']);
  for (const f of files) {
    assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(path.join(dir, f), 'latin1'), /^spike:[1-3]:[0-9a-f]{64}$/);
    assert.ok(!out.includes(fs.readFileSync(path.join(dir, f), 'latin1').slice(8)), 'OPR-14: no shard on stdout');
  }
  assert.ok((await ok(['operator', 'recover', '--dir', dir])).includes('saved'), 'a re-run with the same shards succeeds');
  assert.match(await ok(['operator', 'verify-shard', path.join(dir, 'spike.recovery.2.txt')]), /^OK: shard 2 is valid/);
  const text = fs.readFileSync(path.join(dir, 'spike.recovery.2.txt'), 'latin1');
  const last = text.at(-1) === '0' ? '1' : '0';
  fs.writeFileSync(path.join(cwd, 'corrupt.txt'), text.slice(0, -1) + last);
  await fails(['operator', 'verify-shard', 'corrupt.txt'], /^Error: Shard 2 does NOT match the commitments/);
});

test('the npm start banner shows the exact commands, with SPIKE_DEV_DIR=<dir>; they work as printed from another folder', { skip: DEV_STACK }, async () => {
  const dir = path.join(cwd, '.spike');
  const lines = devOut.split('\n');
  assert.ok(lines.includes(`From another terminal, in ${cwd}:`), devOut.slice(-2000));
  const commands = lines.filter((l) => /^ {2}SPIKE_DEV_DIR=\S+ npx spike /.test(l));
  assert.ok(commands.length >= 6, `banner commands: ${JSON.stringify(commands)}`);
  for (const l of commands) assert.ok(l.startsWith(`  SPIKE_DEV_DIR=${dir} npx spike `), l);
  assert.ok(lines.some((l) => l.includes('npx spike') && l.includes('completion bash')));
  // run the first three exactly as printed (put, get, policy list), from a folder that is not the stack's
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-dev-elsewhere-'));
  try {
    for (const l of commands.slice(0, 3)) {
      const m = /^ {2}SPIKE_DEV_DIR=(\S+) npx spike (.*)$/.exec(l)!;
      const r = await new Promise<Run>((resolve) => {
        const p = spawnBin('spike', m[2]!.split(' '), { cwd: elsewhere, env: { SPIKE_DEV_DIR: m[1]! }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout?.on('data', (c: Buffer) => (out += c.toString()));
        p.stderr?.on('data', (c: Buffer) => (err += c.toString()));
        p.on('exit', (code) => resolve({ code, out, err }));
      });
      assert.equal(r.code, 0, `${l}: ${r.err}`);
      assert.equal(r.err, '', l);
    }
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('operator recover with no --out on the dev stack writes into the dev folder\'s recovery area, never $HOME', { skip: SKIP.operator }, async () => {
  const area = path.join(cwd, '.spike', 'recovery');
  const before = fs.readdirSync(area).sort();
  assert.deepEqual(before, ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt'], 'npm start exported its shards there');
  const contents = before.map((f) => fs.readFileSync(path.join(area, f), 'latin1'));
  const out = await ok(['operator', 'recover', '--json']);
  assert.deepEqual(JSON.parse(out), { ok: true, dir: area, files: before.map((f) => path.join(area, f)) });
  assert.deepEqual(before.map((f) => fs.readFileSync(path.join(area, f), 'latin1')), contents, 'the same shards');
  assert.equal(fs.existsSync(path.join(cwd, '.spike', 'recover')), false, 'not the old $HOME/.spike/recover default ($HOME is the test folder here)');
});
