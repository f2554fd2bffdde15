/**
 * A Keeper killed (kill -9) INSIDE a share refresh, at each step of the two-phase move, under
 * write load (issue 16 acceptance), on the real binaries. Nexus holds at the step (test-only
 * hold point, SPIKE_NEXUS_TEST_HOLD_AT/_FILE), a Keeper is killed and restarted empty, writes
 * keep being acknowledged, then the move goes on:
 *  - after-pending-store: the restarted Keeper is re-filled and gets its pending share with
 *    the others → the move completes;
 *  - after-pending-push: the restarted Keeper lost the pending share it acknowledged; the
 *    status probe or the pre-commit check sends it its current and pending shares again
 *    → the move completes (it is never committed on a share that no longer exists);
 *  - after-commit: the commit message re-fills the Keeper with its new share → completes.
 * Then Nexus is killed -9 and recovers from the Keepers alone; every acknowledged write reads
 * back; every Keeper ends on the stored epoch; a shard exported before the move verifies
 * exactly when the move was abandoned (old-epoch shards are refused after a switch).
 * One stack for every step: the Nexus restart of one step arms the hold of the next.
 */
import path from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, TD } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import {
  PROBE_IDENTITY, allWritesReadable, stopLoads, epochIs, holdEnv, keeperEpoch, recoverTo, release, setEnv, shardVerifies, waitFor, waitHeld, writeLoad,
} from '../helpers/key-faults.js';

const STEPS = ['after-pending-store', 'after-pending-push', 'after-commit'] as const;
const holds = tempDir('spike-fi-hold-');
const nexusEnv: Record<string, string> = { ...holdEnv(holds, STEPS[0]) };
const written = new Map<string, string>();
let stack: Stack;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2, nexusEnvOf: { 1: nexusEnv }, identities: { [PROBE_IDENTITY]: `spiffe://${TD}/spike/nexus/probe` } });
});

after(async () => {
  await stopLoads();
  await stack?.stop();
});

STEPS.forEach((step, i) => {
  test(`FI-KEEPER-${step}: kill -9 of a Keeper while the refresh holds ${step}, under write load; then kill -9 of Nexus: recovery works, every acknowledged write reads back, Keepers on the stored epoch, old shards refused after a switch`, async (t) => {
    const keeper = i + 1;
    const from = await keeperEpoch(stack);
    const shards = await recoverTo(stack, path.join(stack.dir, `shards-${step}`));
    const load = writeLoad(stack, written, `fk-${step}`);
    await waitFor('a few acknowledged writes', () => load.acked() > 0);
    const c = await stack.client('pilot', { timeoutMs: 180_000 });
    const moved = c.refreshShares().then((r) => r.epoch, (e: unknown) => e);
    await waitHeld(holds, step);
    await stack.killKeeper(keeper); // kill -9 inside the move
    await stack.startKeeper(keeper); // back, empty
    const n = load.acked();
    await waitFor('writes acknowledged while the move holds', () => load.acked() >= n + 3);
    release(holds, step);
    const r = await moved;
    // The restarted Keeper is back before the move goes on: it is re-filled, so every step completes.
    assert.equal(typeof r, 'number', `the move completed (${String(r)})`);
    const to = r as number;
    assert.ok(to > from, `${to} > ${from}`);
    t.diagnostic(`the move completed (epoch ${to})`);
    await epochIs(stack, to, { pendingOk: false });

    // kill -9 of Nexus; it recovers from the Keepers alone (and holds at the next step's point).
    setEnv(nexusEnv, STEPS[i + 1] ? holdEnv(holds, STEPS[i + 1]!) : {});
    await stack.killNexus();
    await stack.startNexus();
    await stack.waitReady();
    const m = load.acked();
    await waitFor('writes acknowledged after the recovery', () => load.acked() > m);
    await load.stop();
    await allWritesReadable(stack, written);
    await epochIs(stack, to, { pendingOk: false });
    assert.equal(await shardVerifies(stack, shards[keeper - 1]!), false, 'a shard of the old epoch is refused after the switch');
  });
});

test('FI-KEEPER-after: a refresh after the faults completes (epochs never reused)', async () => {
  const from = await keeperEpoch(stack);
  const r = await stack.spike(['operator', 'refresh-shares']);
  assert.equal(r.code, 0, r.stderr);
  const to = Number(/epoch (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(to > from, r.stdout);
  await epochIs(stack, to);
  await allWritesReadable(stack, written);
});
