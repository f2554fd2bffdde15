/**
 * native/build.mjs, the install script that builds native/malloc-trim with npm's node-gyp: a
 * build that runs out of time or fails never leaves its `make`/compiler processes running
 * after the install moved on, and never fails the install. node-gyp is replaced by a script
 * (npm's `npm_config_node_gyp`, as npm names it) that starts a long "compiler" beside itself,
 * the way node-gyp starts `make` and `make` starts `cc1`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/bin.js';
import { waitFor } from './helpers/mtls-harness.js';
import { tempDir } from './helpers/temp.js';

const BUILD = path.join(REPO_ROOT, 'native', 'build.mjs');

/** A stand-in for node-gyp: starts a 60 s "compiler" (its pid written to `pidFile`), then waits or exits 1. */
function fakeGyp(dir: string, pidFile: string, then: 'hang' | 'fail'): string {
  const file = path.join(dir, `gyp-${then}.cjs`);
  fs.writeFileSync(file, [
    "const { spawn } = require('node:child_process');",
    "const fs = require('node:fs');",
    // Inherits node-gyp's output pipes, as make and the compiler do.
    `const c = spawn('sleep', ['60'], { stdio: ${then === 'hang' ? "'inherit'" : "'ignore'"} });`,
    `fs.writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
    then === 'hang' ? 'setInterval(() => undefined, 60_000);' : 'setTimeout(() => process.exit(1), 50);',
  ].join('\n'));
  return file;
}

/** Whether `pid` still runs (a zombie waiting to be reaped has stopped running). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

const buildEnv = (gyp: string, timeoutMs: number): NodeJS.ProcessEnv => ({
  PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', npm_config_node_gyp: gyp, SPIKE_NATIVE_BUILD_TIMEOUT_MS: String(timeoutMs),
});

function build(gyp: string, timeoutMs: number): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BUILD], { encoding: 'utf8', env: buildEnv(gyp, timeoutMs), timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

test('native build: out of time, the whole build is stopped (node-gyp and the compiler it started), and the install goes on', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async () => {
  const dir = tempDir('spike-native-build-');
  const pidFile = path.join(dir, 'compiler.pid');
  const r = build(fakeGyp(dir, pidFile, 'hang'), 1500);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /native\/malloc-trim: not built \(timed out after 1500 ms\)/);
  const compiler = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    await waitFor(() => !running(compiler), 'the compiler started by the timed-out build to stop');
  } finally {
    try { process.kill(compiler, 'SIGKILL'); } catch { /* stopped */ }
  }
});

test('native build: node-gyp fails while a compiler it started still runs: that compiler is stopped too', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async () => {
  const dir = tempDir('spike-native-build-');
  const pidFile = path.join(dir, 'compiler.pid');
  const r = build(fakeGyp(dir, pidFile, 'fail'), 60_000);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /native\/malloc-trim: not built \(exit 1\)/);
  const compiler = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    await waitFor(() => !running(compiler), 'the compiler left by the failed build to stop');
  } finally {
    try { process.kill(compiler, 'SIGKILL'); } catch { /* stopped */ }
  }
});

test('native build: interrupted (Ctrl-C reaches the install, not the build\'s own process group), the build stops with it', { skip: process.platform !== 'linux' ? 'Linux only' : false }, async () => {
  const dir = tempDir('spike-native-build-');
  const pidFile = path.join(dir, 'compiler.pid');
  const p = spawn(process.execPath, [BUILD], { env: buildEnv(fakeGyp(dir, pidFile, 'hang'), 60_000), stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => p.once('exit', (_code, signal) => resolve(signal)));
  await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 'the build to start its compiler');
  const compiler = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    p.kill('SIGINT');
    assert.equal(await exited, 'SIGINT', 'the install script ends by the signal it got');
    await waitFor(() => !running(compiler), 'the compiler of the interrupted build to stop');
  } finally {
    try { process.kill(compiler, 'SIGKILL'); } catch { /* stopped */ }
  }
});
