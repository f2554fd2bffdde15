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
 * the `make`, compiler and linker processes under it, so nothing keeps compiling after the
 * install moved on.
 */
const TIMEOUT_SETTING = process.env.SPIKE_NATIVE_BUILD_TIMEOUT_MS;
const TIMEOUT_VALID = /^[1-9][0-9]{0,8}$/.test(TIMEOUT_SETTING ?? '');
const BUILD_TIMEOUT_MS = TIMEOUT_VALID ? Number(TIMEOUT_SETTING) : 180_000;
if (TIMEOUT_SETTING !== undefined && !TIMEOUT_VALID) {
  say('SPIKE_NATIVE_BUILD_TIMEOUT_MS is not a whole number of milliseconds; the build may take 180000');
}

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
/** The processes below `root` (their parent chain leads to it), read from /proc. */
function descendants(root) {
  const children = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  for (let todo = [root]; todo.length > 0;) {
    for (const kid of children.get(todo.pop()) ?? []) {
      out.push(kid);
      todo.push(kid);
    }
  }
  return out;
}

/**
 * Stops node-gyp (`pid`, still running) and everything below it. The tree is frozen first
 * (SIGSTOP, read again until nothing new turns up), so nothing forks away while it is being
 * killed; a process killed before its children would leave them to init, out of reach.
 */
function stopTree(pid) {
  const frozen = new Set();
  for (let round = 0; round < 5; round++) {
    const fresh = [pid, ...descendants(pid)].filter((p) => !frozen.has(p));
    if (fresh.length === 0) break;
    for (const p of fresh) {
      frozen.add(p);
      try {
        process.kill(p, 'SIGSTOP');
      } catch {
        /* already gone */
      }
    }
  }
  for (const p of frozen) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/**
 * Runs node-gyp and resolves once it exited and its output pipes closed: with its status, or
 * with the error that kept it from starting or the time limit that stopped it (stopTree).
 * The build stays in the install's process group, so Ctrl-C or a kill of the whole job
 * reaches every process of it, as before. Never rejects: the install must not fail here.
 */
function runBuild() {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(process.execPath, [gyp, 'rebuild', '--release'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      resolve({ status: null, signal: null, error, out: '' });
      return;
    }
    let out = '';
    const keep = (c) => { out = (out + c).slice(-64 * 1024); };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stopTree(child.pid);
    }, BUILD_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ status: null, signal: null, error, out });
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, error: timedOut ? new Error(`timed out after ${BUILD_TIMEOUT_MS} ms`) : undefined, out });
    });
  });
}

const r = await runBuild();
const built = path.join(dir, 'build', 'Release', 'malloc_trim.node');
let why;
if (r.status === 0 && fs.existsSync(built)) {
  try {
    fs.rmSync(path.join(dir, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
    // Nobody but the owner may write what the servers load (src/lib/malloc-trim.ts checks), also
    // where the installing user's umask lets the group write (002).
    for (const p of [path.dirname(dir), dir, path.join(dir, 'build'), path.join(dir, 'build', 'Release'), built]) {
      fs.chmodSync(p, fs.statSync(p).mode & ~0o022 & 0o7777);
    }
    process.exit(0);
  } catch (e) {
    // The servers refuse an addon others could write; remove it rather than leave it half set up.
    try {
      fs.rmSync(built, { force: true });
    } catch {
      /* left as it is: the servers' own ownership and mode checks refuse it */
    }
    why = `could not restrict its permissions: ${e instanceof Error ? e.message : String(e)}`;
  }
}
why ??= r.error
  ? r.error.message
  : r.signal
    ? `stopped by ${r.signal}`
    : (r.out.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`);
say(`not built (${why.trim().slice(0, 200)}); Nexus and the Keepers keep freed native memory after bursts`);
