/**
 * The `npm start` dev stack as a child process for e2e tests (bin/spike-dev.js), and the
 * `spike` CLI run from a folder holding its `.spike` dev state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binCommand, binEnvPath, REPO_ROOT } from './bin.js';
import { freePort } from './stack.js';

/**
 * A fresh dev-stack folder (`<tmp>/.spike`, 0700, removed after the test) and the
 * environment that points `npm start` at it on free ports.
 */
export async function devFolder(t: { after(fn: () => void): void }, prefix: string): Promise<{ dir: string; spikeDir: string; env: Record<string, string> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const spikeDir = path.join(dir, '.spike');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = {
    SPIKE_DEV_DIR: spikeDir,
    SPIKE_DEV_NEXUS_PORT: String(await freePort()),
    SPIKE_DEV_KEEPER_PORTS: [await freePort(), await freePort(), await freePort()].join(','),
  };
  fs.mkdirSync(spikeDir, { recursive: true, mode: 0o700 });
  return { dir, spikeDir, env };
}

export interface Dev { proc: ChildProcess; out: () => string; exited: Promise<number | null> }

export function startDev(env: Record<string, string>): Dev {
  const proc = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'spike-dev.js')], {
    cwd: env['SPIKE_DEV_DIR'], env: { PATH: process.env['PATH'] ?? '', HOME: env['SPIKE_DEV_DIR'], ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  proc.stdout!.on('data', (c: Buffer) => { text += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { text += c.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => text, exited };
}

export async function waitFor(d: Dev, marker: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!d.out().includes(marker)) {
    if (d.proc.exitCode !== null) throw new Error(`dev stack exited early:\n${d.out().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`no "${marker}" after ${ms} ms:\n${d.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function cli(dir: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const [file, ...pre] = binCommand('spike');
    const p = spawn(file!, [...pre, ...args], {
      cwd: dir, env: { PATH: binEnvPath(), HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

