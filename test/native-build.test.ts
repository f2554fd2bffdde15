/**
 * native/build.mjs, the install script that builds native/malloc-trim with npm's node-gyp:
 * it never fails the install, and a build that runs out of time, or an install that is
 * interrupted or killed, leaves no `make`/compiler process running. node-gyp is replaced by a
 * script (npm's `npm_config_node_gyp`, as npm names it) that starts a long "compiler" below
 * itself, the way node-gyp starts `make` and `make` starts `cc1`.
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
const LINUX = { skip: process.platform !== 'linux' ? 'Linux only' : false };

/** A stand-in for node-gyp that starts a 60 s "compiler" (its pid written to `pidFile`) and waits. */
function fakeGyp(dir: string, pidFile: string): string {
  const file = path.join(dir, 'gyp.cjs');
  fs.writeFileSync(file, [
    "const { spawn } = require('node:child_process');",
    // Inherits node-gyp's output pipes, as make and the compiler do.
    "const c = spawn('sleep', ['60'], { stdio: 'inherit' });",
    `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
    'setInterval(() => undefined, 60_000);',
  ].join('\n'));
  return file;
}

/** Whether `pid` still runs (a zombie waiting to be reaped has stopped running). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const buildEnv = (gyp: string, timeoutMs: number): NodeJS.ProcessEnv => ({
  PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', npm_config_node_gyp: gyp, SPIKE_NATIVE_BUILD_TIMEOUT_MS: String(timeoutMs),
});

/** The compiler's pid once the build started it; it is killed at the end whatever happened. */
async function compilerOf(pidFile: string): Promise<number> {
  await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 'the build to start its compiler');
  return Number(fs.readFileSync(pidFile, 'utf8'));
}

function cleanUp(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* stopped */
  }
}

test('native build: out of time, the whole build is stopped (node-gyp and the compiler below it), and the install goes on', LINUX, async () => {
  const dir = tempDir('spike-native-build-');
  const pidFile = path.join(dir, 'compiler.pid');
  const r = spawnSync(process.execPath, [BUILD], { encoding: 'utf8', env: buildEnv(fakeGyp(dir, pidFile), 1500), timeout: 60_000 });
  const compiler = Number(fs.readFileSync(pidFile, 'utf8'));
  try {
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /native\/malloc-trim: not built \(timed out after 1500 ms\)/);
    await waitFor(() => !running(compiler), 'the compiler started by the timed-out build to stop');
  } finally {
    cleanUp(compiler);
  }
});

for (const [how, signal] of [['interrupted (Ctrl-C: SIGINT to the whole job)', 'SIGINT'], ['killed as a whole job (SIGKILL to its process group)', 'SIGKILL']] as const) {
  test(`native build: the install ${how}, no compiler of the build keeps running`, LINUX, async () => {
    const dir = tempDir('spike-native-build-');
    const pidFile = path.join(dir, 'compiler.pid');
    // Its own process group, as a shell runs a job (`npm ci` in a terminal or a CI step).
    const p = spawn(process.execPath, [BUILD], { env: buildEnv(fakeGyp(dir, pidFile), 60_000), stdio: 'ignore', detached: true });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => p.once('exit', (_code, sig) => resolve(sig)));
    const compiler = await compilerOf(pidFile);
    try {
      process.kill(-p.pid!, signal);
      assert.equal(await exited, signal, 'the install script ends by the signal');
      await waitFor(() => !running(compiler), 'the compiler to stop with the job');
    } finally {
      cleanUp(compiler);
    }
  });
}

test('native build: a build that cannot even start (its folder is not a folder) never fails the install', LINUX, () => {
  const root = tempDir('spike-native-build-');
  fs.mkdirSync(path.join(root, 'native'));
  fs.copyFileSync(BUILD, path.join(root, 'native', 'build.mjs'));
  fs.writeFileSync(path.join(root, 'native', 'malloc-trim'), 'not a folder');
  const r = spawnSync(process.execPath, [path.join(root, 'native', 'build.mjs')], {
    encoding: 'utf8', env: buildEnv(process.execPath, 60_000), timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /native\/malloc-trim: not built \(.*ENOTDIR.*\)/);
});
