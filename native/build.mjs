// Builds native/malloc-trim (one N-API function running glibc's malloc_trim; src/lib/malloc-trim.ts)
// when the package is installed: npm runs this as the package's `install` script, in a checkout
// (`npm ci`), in a project that installs the package, and on `npm run install`. It needs Python,
// make and a C compiler (node-gyp's own needs) and Node's headers. It never fails the install:
// where it cannot build, it says so in one line and the servers run without giving freed native
// memory back (as they did before it existed; they log that at start).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'malloc-trim');
const say = (line) => process.stderr.write(`spike-ts native/malloc-trim: ${line}\n`);
/**
 * How long the build may take before it is stopped (3 min; `SPIKE_NATIVE_BUILD_TIMEOUT_MS`, a
 * whole number of ms, for a slow machine). On expiry the whole build is killed: node-gyp and
 * the `make`, compiler and linker processes under it (its own process group), so nothing keeps
 * compiling after the install moved on.
 */
const BUILD_TIMEOUT_MS = /^[1-9][0-9]{0,8}$/.test(process.env.SPIKE_NATIVE_BUILD_TIMEOUT_MS ?? '')
  ? Number(process.env.SPIKE_NATIVE_BUILD_TIMEOUT_MS)
  : 180_000;

/** npm's own node-gyp: the one npm names for install scripts, else the one beside npm itself. */
function npmNodeGyp() {
  const named = process.env.npm_config_node_gyp;
  if (named && fs.existsSync(named)) return named;
  const npm = process.env.npm_execpath;
  if (npm) {
    const beside = path.join(path.dirname(npm), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (fs.existsSync(beside)) return beside;
  }
  return undefined;
}

if (process.platform !== 'linux') {
  say(`not built on ${process.platform} (glibc's malloc_trim is Linux only)`);
  process.exit(0);
}
const gyp = npmNodeGyp();
if (gyp === undefined) {
  say('not built (run it through npm: `npm run install`, which provides node-gyp)');
  process.exit(0);
}
/**
 * Runs node-gyp as the leader of a process group of its own, so the whole build (`make`,
 * `cc1`, `ld`) can be stopped with it: on expiry of BUILD_TIMEOUT_MS, when node-gyp fails
 * while something it started still runs, and when this script is interrupted (Ctrl-C reaches
 * only the terminal's foreground group, which no longer holds the build). Resolves once
 * node-gyp exited and its output pipes closed.
 */
function runBuild() {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [gyp, 'rebuild', '--release'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stopAll = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* the group is gone */
      }
    };
    let out = '';
    const keep = (c) => { out = (out + c).slice(-64 * 1024); };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; stopAll(); }, BUILD_TIMEOUT_MS);
    const interrupted = (signal) => {
      stopAll();
      process.kill(process.pid, signal);
    };
    const onSignal = { SIGINT: () => interrupted('SIGINT'), SIGTERM: () => interrupted('SIGTERM'), SIGHUP: () => interrupted('SIGHUP') };
    for (const [sig, fn] of Object.entries(onSignal)) process.once(sig, fn);
    child.once('error', (error) => { clearTimeout(timer); resolve({ status: null, signal: null, error, out }); });
    child.once('exit', (code) => { if (code !== 0) stopAll(); });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      for (const [sig, fn] of Object.entries(onSignal)) process.removeListener(sig, fn);
      resolve({ status, signal, error: timedOut ? new Error(`timed out after ${BUILD_TIMEOUT_MS} ms`) : undefined, out });
    });
  });
}

const r = await runBuild();
const built = path.join(dir, 'build', 'Release', 'malloc_trim.node');
if (r.status === 0 && fs.existsSync(built)) {
  fs.rmSync(path.join(dir, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  // Nobody but the owner may write what the servers load (src/lib/malloc-trim.ts checks), also
  // where the installing user's umask lets the group write (002).
  for (const p of [path.dirname(dir), dir, path.join(dir, 'build'), path.join(dir, 'build', 'Release'), built]) {
    fs.chmodSync(p, fs.statSync(p).mode & ~0o022 & 0o7777);
  }
  process.exit(0);
}
const why = r.error
  ? r.error.message
  : r.signal
    ? `stopped by ${r.signal}`
    : (r.out.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`);
say(`not built (${why.trim().slice(0, 200)}); Nexus and the Keepers keep freed native memory after bursts`);
