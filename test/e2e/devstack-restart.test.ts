/**
 * Issue 4: `npm start` (bin/spike-dev.js) reaches `SPIKE ready` on a fresh state folder; after
 * Ctrl-C it starts again with empty Keepers, restores the SAME root key from the development
 * shards, and data written before the restart reads back. Ctrl-C stops every child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/bin.js';
import { freePort } from '../helpers/stack.js';

interface Dev { proc: ChildProcess; out: () => string; exited: Promise<number | null> }

function startDev(env: Record<string, string>): Dev {
  const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'spike-dev.js')], {
    cwd: env['SPIKE_DEV_DIR'], env: { PATH: process.env['PATH'] ?? '', HOME: env['SPIKE_DEV_DIR'], ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  proc.stdout!.on('data', (c: Buffer) => { text += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { text += c.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => text, exited };
}

async function waitFor(d: Dev, marker: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!d.out().includes(marker)) {
    if (d.proc.exitCode !== null) throw new Error(`dev stack exited early:\n${d.out().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`no "${marker}" after ${ms} ms:\n${d.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cli(dir: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'spike.js'), ...args], {
      cwd: dir, env: { PATH: process.env['PATH'] ?? '', HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('npm start: SPIKE ready; Ctrl-C stops everything; a restart restores the same key from dev shards', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-dev-'));
  const spikeDir = path.join(dir, '.spike');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = {
    SPIKE_DEV_DIR: spikeDir,
    SPIKE_DEV_NEXUS_PORT: String(await freePort()),
    SPIKE_DEV_KEEPER_PORTS: [await freePort(), await freePort(), await freePort()].join(','),
  };
  fs.mkdirSync(spikeDir, { recursive: true, mode: 0o700 });

  const first = startDev(env);
  t.after(() => { first.proc.kill('SIGKILL'); });
  await waitFor(first, 'SPIKE ready', 180_000);
  const files = fs.readdirSync(path.join(spikeDir, 'recovery')).sort();
  assert.deepEqual(files, ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt']);
  for (const f of files) assert.equal(fs.statSync(path.join(spikeDir, 'recovery', f)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(spikeDir, 'recovery')).mode & 0o777, 0o700);

  // The CLI works from the folder with no setup (sockets and env found under ./.spike).
  const put = await cli(dir, ['secret', 'put', 'secrets/db/creds', 'username=admin', 'password=s3cret']);
  assert.equal(put.code, 0, put.stderr);

  const kids = childPids(first.proc.pid!);
  assert.ok(kids.length >= 5, `agent, 3 keepers, nexus are children (${kids.length})`);
  first.proc.kill('SIGINT');
  assert.equal(await first.exited, 0);
  for (const k of kids) assert.equal(alive(k), false, `child ${k} stopped`);

  const second = startDev(env);
  t.after(() => { second.proc.kill('SIGKILL'); });
  await waitFor(second, 'SPIKE ready', 180_000);
  assert.match(second.out(), /restoring the root key from development shards/);
  const get = await cli(dir, ['secret', 'get', 'secrets/db/creds', '--json']);
  assert.equal(get.code, 0, get.stderr);
  assert.deepEqual(JSON.parse(get.stdout), { password: 's3cret', username: 'admin' });
  second.proc.kill('SIGINT');
  assert.equal(await second.exited, 0);
});
