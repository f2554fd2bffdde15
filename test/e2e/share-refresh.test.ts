/**
 * Proactive share refresh on the real binaries (issue 16 §1): `spike operator
 * refresh-shares` moves every Keeper to a new epoch of the same root key and says loudly
 * that recovery shards must be saved again; old shards are then refused by verify-shard and
 * restore. A `kill -9` of Nexus at each step of the two-phase move (test-only crash points,
 * SPIKE_NEXUS_TEST_CRASH_AT) plus a `kill -9` of a Keeper, under write load: every
 * acknowledged write reads back, Nexus recovers from the Keepers alone, and every Keeper
 * ends on the epoch the store records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KEEPER_DOWN_TIMERS, Stack, TD } from '../helpers/stack.js';
import {
  PROBE_IDENTITY, allWritesReadable as allWritesReadableOf, epochIs as epochIsOf, keeperEpochs as keeperEpochsOf, recoverTo as recoverToOf,
  stopLoads, waitFor, writeLoad as writeLoadOf, type KeeperHolding,
} from '../helpers/key-faults.js';

const N = 3;
const nexusEnv: Record<string, string> = {};
let stack: Stack;
const written = new Map<string, string>();

before(async () => {
  stack = await Stack.start({
    keepers: N, threshold: 2, nexusEnvOf: { 1: nexusEnv },
    nexusEnv: KEEPER_DOWN_TIMERS, // the refresh with Keeper 3 down fails in about a second
    identities: { [PROBE_IDENTITY]: `spiffe://${TD}/spike/nexus/probe`, lookalike: `spiffe://${TD}/spike/pilot/role/superuser-x` },
  });
});

after(async () => {
  await stopLoads();
  await stack?.stop();
});

const keeperEpochs = (): Promise<KeeperHolding[]> => keeperEpochsOf(stack);
const epochIs = (e: number): Promise<void> => epochIsOf(stack, e);
const writeLoad = (tag: string): ReturnType<typeof writeLoadOf> => writeLoadOf(stack, written, tag);
const allWritesReadable = (): Promise<void> => allWritesReadableOf(stack, written);
const recoverTo = (dir: string): Promise<string[]> => recoverToOf(stack, dir);

test('refresh-shares: every Keeper moves to epoch 2, the CLI says loudly to save shards again, old shards are refused, the key is unchanged', async () => {
  const old = await recoverTo(path.join(stack.dir, 'shards-e1'));
  const load = writeLoad('a');
  const r = await stack.spike(['operator', 'refresh-shares']);
  await load.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /epoch 2/);
  assert.match(r.stdout, /RECOVERY SHARDS SAVED BEFORE THIS REFRESH NO LONGER WORK/);
  assert.match(r.stdout, /spike operator recover/);
  await epochIs(2);
  const v = await stack.spike(['operator', 'verify-shard', old[0]!], { identity: 'restore' });
  assert.notEqual(v.code, 0, 'an epoch-1 shard no longer verifies');
  assert.match(v.stderr, /does NOT match/);
  const restore = await stack.spike(['operator', 'restore', old[0]!], { identity: 'restore' });
  assert.notEqual(restore.code, 0, 'restore refuses an epoch-1 shard');
  const fresh = await recoverTo(path.join(stack.dir, 'shards-e2'));
  // no share of either epoch in any process's log (hex form of the shard files)
  const logs = stack.logs();
  for (const f of [...old, ...fresh]) assert.ok(!logs.includes(fs.readFileSync(f, 'utf8').trim().split(':')[2]!), f);
  assert.equal((await stack.spike(['operator', 'verify-shard', fresh[1]!], { identity: 'restore' })).code, 0);
  // Nexus restarted comes back from the epoch-2 Keeper shares alone.
  await stack.killNexus();
  await stack.startNexus();
  await stack.waitReady();
  await allWritesReadable();
  // POL-16: superuser only — the break-glass roles, a workload and a look-alike are refused, nothing moves
  // (the CLI refuses such identities itself; this asks Nexus directly)
  for (const identity of ['recover', 'restore', 'lite', 'lookalike']) {
    const c = await stack.client(identity);
    await assert.rejects(c.refreshShares(), (e: unknown) => (e as { code?: string }).code === 'access_unauthorized', identity);
  }
  const cli = await stack.spike(['operator', 'refresh-shares'], { identity: 'recover' });
  assert.match(cli.stderr, /needs the .*superuser identity/);
  await epochIs(2);
});

for (const step of ['after-pending-store', 'after-pending-push', 'after-commit'] as const) {
  test(`FI: kill -9 of Nexus ${step} and of a Keeper, under write load: recovery works, every acknowledged write reads back, Keepers end on the stored epoch`, async () => {
    const before = (await keeperEpochs())[0]!.epoch!;
    nexusEnv['SPIKE_NEXUS_TEST_CRASH_AT'] = step;
    await stack.killNexus();
    await stack.startNexus();
    await stack.waitReady();
    const load = writeLoad(step);
    await waitFor('a few writes', async () => written.size > 0);
    const r = await stack.spike(['operator', 'refresh-shares']);
    assert.notEqual(r.code, 0, 'Nexus died in the middle of the move');
    await stack.killNexus(); // reap the self-killed process
    await stack.killKeeper(2);
    await stack.startKeeper(2);
    delete nexusEnv['SPIKE_NEXUS_TEST_CRASH_AT'];
    await stack.startNexus();
    await stack.waitReady();
    const m = load.acked();
    await waitFor('a write acknowledged after the recovery', async () => load.acked() > m);
    await load.stop();
    await allWritesReadable();
    // after-pending-store: no Keeper holds the new epoch → the move is abandoned;
    // later steps: every Keeper acknowledged it → it is finished at recovery.
    const expected = step === 'after-pending-store' ? before : before + 1;
    await epochIs(expected);
    // and a later refresh still works (epochs never reused)
    const again = await stack.spike(['operator', 'refresh-shares']);
    assert.equal(again.code, 0, again.stderr);
    await epochIs(before + 2);
  });
}

test('a Keeper down: refresh-shares fails with one clear line and changes nothing; with the Keeper back (empty) it succeeds', async () => {
  const before = (await keeperEpochs())[0]!.epoch!;
  await stack.killKeeper(3);
  const r = await stack.spike(['operator', 'refresh-shares']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /share refresh did not run: .*not every Keeper acknowledged/);
  await stack.startKeeper(3);
  const ok = await stack.spike(['operator', 'refresh-shares']);
  assert.equal(ok.code, 0, ok.stderr);
  await epochIs(before + 2); // the abandoned move's epoch is never reused
  await allWritesReadable();
});
