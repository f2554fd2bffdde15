/**
 * ATTACK core dump of key material (ENV-08; issue 11, item 3), real binaries.
 *
 * Reproduction against the old code: the processes inherited whatever RLIMIT_CORE their
 * launcher had. On this kind of host that is soft 0 but hard unlimited, so any code path
 * (or a user, with `prlimit --pid`) could raise the soft limit, and a crash (SIGSEGV,
 * SIGABRT from `--abort-on-uncaught-exception`, `kill -QUIT`) would write the heap — root
 * key, purpose keys, Shamir shares — to a core file. Started with the soft limit raised to
 * the hard one (as `prlimit --core=…` here, or `LimitCORE=infinity`), they kept it.
 *
 * Expected now: Nexus, a Keeper, Bootstrap, `spike operator verify-shard` and `spike audit
 * verify --shard` (it rebuilds the root key from shards) each bring
 * their own limit to 0 soft AND hard at start, read back from /proc/<pid>/limits of the
 * live process. Bootstrap is short-lived, so it is caught while it holds a freshly split
 * key and retries Keepers that do not answer (SPIKE_BOOTSTRAP_FORCE skips its "already
 * initialised" check; the ports are closed); Pilot while it waits for a shard on stdin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import { binPath } from '../helpers/bin.js';
import { freePort, Stack } from '../helpers/stack.js';
import { parseProcLimitsCore } from '../../src/lib/hardening.js';
import { PRLIMIT, raiseCoreWrapper, raisedCoreLimit } from '../helpers/core-limit.js';

const haveProc = fs.existsSync('/proc/self/limits') && fs.existsSync(PRLIMIT);

function coreLimit(pid: number): string {
  const l = parseProcLimitsCore(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
  assert.ok(l, `pid ${pid}: no core limit line`);
  return `${l.soft === null ? 'unlimited' : l.soft} ${l.hard === null ? 'unlimited' : l.hard}`;
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts `spike <args>` under the raised-limit wrapper and, while it still waits for its input,
 * asserts that it brought its core limit to 0 soft and hard; then kills it.
 */
async function caughtWaiting(wrap: string, wrapArgs: string[], args: string[], opts: SpawnOptions, what: string): Promise<void> {
  const child = spawn(wrap, [...wrapArgs, process.execPath, binPath('spike'), ...args], opts);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    // Poll: the wrapper execs node in place (same pid), which then lowers its own limit.
    await waitFor(() => child.exitCode !== null || coreLimit(child.pid!) === '0 0', 20_000, `${what} hardened`);
    assert.equal(child.exitCode, null, `${what} still waiting for its input`);
    assert.equal(coreLimit(child.pid!), '0 0', what);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

describe('ATTACK core dump of key material (ENV-08)', { skip: !haveProc && 'needs /proc and util-linux prlimit', concurrency: false }, () => {
  let stack: Stack;

  before(async () => {
    // Every process starts with the runner's limit and lowers it itself (the default starts
    // them at 0/0: test/helpers/core-limit.ts).
    stack = await Stack.start({ coreLimit: 'inherit' });
  });
  after(async () => {
    await stack?.stop();
  });

  test('ATTACK core dump (ENV-08): Nexus, Keeper, Bootstrap and the Pilot shard commands run with "Max core file size" 0 soft and 0 hard', async (t) => {
    t.diagnostic(`test runner core limit (soft hard): ${coreLimit(process.pid)}`);

    assert.equal(coreLimit(stack.pid('nexus')!), '0 0', 'Nexus');
    assert.match(stack.logs('nexus'), /core dumps disabled/);
    if (raisedCoreLimit() !== '0') assert.match(stack.logs('nexus'), /"via":"prlimit"/, 'Nexus lowered its inherited hard limit');
    assert.equal(coreLimit(stack.pid('keeper-2')!), '0 0', 'Keeper 2');

    // A Keeper started with its soft limit raised to the hard limit still ends at 0/0.
    await stack.killKeeper(1);
    await stack.startKeeper(1, { wrapper: raiseCoreWrapper() });
    assert.equal(coreLimit(stack.pid('keeper-1')!), '0 0', 'Keeper 1 (started with a raised limit)');
    // It lowered the limit itself (prlimit), it did not find it at 0.
    if (raisedCoreLimit() !== '0') assert.match(stack.logs('keeper-1'), /"via":"prlimit"/, 'Keeper 1 ran prlimit');

    // Bootstrap, caught while it holds the new root key and retries unreachable Keepers.
    const closed = await Promise.all([1, 2, 3].map(() => freePort()));
    const env = {
      PATH: process.env['PATH'] ?? '', HOME: stack.dir, SPIKE_SYSTEM_LOG_LEVEL: 'INFO',
      SPIFFE_ENDPOINT_SOCKET: stack.socket('bootstrap'), SPIKE_NEXUS_API_URL: stack.nexusUrl,
      SPIKE_NEXUS_BACKEND_STORE: 'sqlite', SPIKE_NEXUS_SHAMIR_SHARES: '3', SPIKE_NEXUS_SHAMIR_THRESHOLD: '2',
      SPIKE_NEXUS_KEEPER_PEERS: closed.map((p) => `https://localhost:${p}`).join(','),
      SPIKE_BOOTSTRAP_FORCE: 'true', SPIKE_BOOTSTRAP_KEEPER_MAX_RETRIES: '100',
      SPIKE_BOOTSTRAP_KEEPER_RETRY_INITIAL_INTERVAL: '1s', SPIKE_BOOTSTRAP_KEEPER_TIMEOUT: '10m',
    };
    const [wrap, ...wrapArgs] = raiseCoreWrapper();
    const boot = spawn(wrap!, [...wrapArgs, process.execPath, binPath('spike-bootstrap'), '-init'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    boot.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    boot.stderr.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    const exited = new Promise<void>((r) => boot.once('exit', () => r()));
    try {
      await waitFor(() => /share delivery failed; retrying/.test(out) || boot.exitCode !== null, 60_000, 'Bootstrap retrying Keepers');
      assert.equal(boot.exitCode, null, `Bootstrap still running: ${out.slice(-1000)}`);
      assert.equal(coreLimit(boot.pid!), '0 0', 'Bootstrap (holding a split key)');
      assert.match(out, /core dumps disabled/);
    } finally {
      boot.kill('SIGKILL');
      await exited;
    }

    // Pilot, while `spike operator verify-shard -` waits for the shard on stdin.
    await caughtWaiting(wrap!, wrapArgs, ['operator', 'verify-shard', '-'],
      { env: { PATH: process.env['PATH'] ?? '', HOME: stack.dir, SPIFFE_ENDPOINT_SOCKET: stack.socket('recover'), SPIKE_NEXUS_API_URL: stack.nexusUrl }, stdio: ['pipe', 'ignore', 'pipe'] },
      'spike operator verify-shard');

    // `spike audit verify --shard …` rebuilds the root key: caught while it waits on its trail
    // (a FIFO nobody writes), which it reads before the shards.
    const fifo = `${stack.dir}/trail.fifo`;
    spawnSync('mkfifo', [fifo]);
    await caughtWaiting(wrap!, wrapArgs, ['audit', 'verify', '--shard', 's1.txt', '--shard', 's2.txt', fifo],
      { env: { PATH: process.env['PATH'] ?? '', HOME: stack.dir }, cwd: stack.dir, stdio: ['ignore', 'ignore', 'pipe'] },
      'spike audit verify --shard');
  });
});
