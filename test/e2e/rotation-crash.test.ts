/**
 * kill -9 of Nexus at each step of `spike operator rotate-root-key`, under write load (issue
 * 16 acceptance), on the real binaries with SQLite. Nexus holds at the step (test-only hold
 * point, SPIKE_NEXUS_TEST_HOLD_AT/_FILE), writes keep being acknowledged during the hold, then
 * Nexus is killed -9 there and started again. Steps: the rotation's sharing stage
 * (after-pending-store, after-pending-push: nothing switched yet → the rotation is void, the
 * old key stays), the store switch committed but the old key still in memory
 * (after-root-switch) and the Keepers told to promote but re-encryption not started
 * (after-promote) → the new key is in force. After each: Nexus recovers from the Keepers
 * alone, every acknowledged write reads back, every Keeper ends on the stored epoch,
 * re-encryption resumes and finishes (one storage generation left), a shard of the old root
 * key is refused after a switch. At the end one key id is left in the database.
 * One stack for every step: the Nexus restart of one step arms the hold of the next.
 */
import path from 'node:path';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, TD } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { keyIdsInDb, opsMetric } from '../helpers/keyring-db.js';
import {
  PROBE_IDENTITY, allWritesReadable, stopLoads, epochAbove, epochIs, holdEnv, keeperEpoch, recoverTo, release, setEnv, shardVerifies, waitFor, waitHeld, writeLoad,
} from '../helpers/key-faults.js';

const STEPS = ['after-pending-store', 'after-pending-push', 'after-root-switch', 'after-promote'] as const;
const SWITCHED: ReadonlySet<string> = new Set(['after-root-switch', 'after-promote']);
const holds = tempDir('spike-rot-hold-');
const nexusEnv: Record<string, string> = { ...holdEnv(holds, STEPS[0]) };
const written = new Map<string, string>();
let stack: Stack;

before(async () => {
  stack = await Stack.start({
    keepers: 3, threshold: 2, ops: true, nexusEnvOf: { 1: nexusEnv },
    identities: { [PROBE_IDENTITY]: `spiffe://${TD}/spike/nexus/probe` },
  });
});

after(async () => {
  await stopLoads();
  await stack?.stop();
});

const storageKeyId = async (): Promise<number> => (await opsMetric(stack, 'spike_keyring_storage_key_id')) ?? 0;

STEPS.forEach((step, i) => {
  test(`ROT-FI-${step}: kill -9 of Nexus while rotate-root-key holds ${step}, under write load: recovery works, every acknowledged write reads back, re-encryption resumes`, async () => {
    const from = await keeperEpoch(stack);
    const keyBefore = await storageKeyId();
    assert.ok(keyBefore >= 1);
    const shards = await recoverTo(stack, path.join(stack.dir, `shards-${step}`));
    const load = writeLoad(stack, written, `rot-${step}`);
    await waitFor('a few acknowledged writes', () => load.acked() > 0);
    const c = await stack.client('pilot', { timeoutMs: 180_000 });
    const rotated = c.rotateRootKey().then(() => 'answered', () => 'failed');
    await waitHeld(holds, step);
    const n = load.acked();
    await waitFor('writes acknowledged while the rotation holds', () => load.acked() >= n + 3);
    setEnv(nexusEnv, STEPS[i + 1] ? holdEnv(holds, STEPS[i + 1]!) : {});
    await stack.killNexus(); // kill -9 at the step
    release(holds, step);
    assert.equal(await rotated, 'failed', 'Nexus died before answering');
    await stack.startNexus();
    await stack.waitReady();
    const m = load.acked();
    await waitFor('writes acknowledged after the recovery', () => load.acked() > m);
    await load.stop();
    await allWritesReadable(stack, written);

    const switched = SWITCHED.has(step);
    if (switched) await epochAbove(stack, from);
    else await epochIs(stack, from, { pendingOk: true });
    if (switched) assert.ok(await storageKeyId() > keyBefore, 'new writes use the new storage key');
    else assert.equal(await storageKeyId(), keyBefore, 'a rotation cut before its switch changed no key');
    await waitFor('re-encryption done (one storage generation left)', async () => (await opsMetric(stack, 'spike_keyring_storage_generations')) === 1, 180_000);
    assert.equal(await shardVerifies(stack, shards[0]!), !switched, 'a shard of the old root key verifies only if the rotation never switched');
    await allWritesReadable(stack, written);
  });
});

test('ROT-FI-end: a rotation after the faults completes; one key id left in the database; every acknowledged write reads back', async () => {
  const from = await keeperEpoch(stack);
  const r = await stack.spike(['operator', 'rotate-root-key']);
  assert.equal(r.code, 0, r.stderr);
  await epochAbove(stack, from);
  await waitFor('re-encryption done', async () => (await opsMetric(stack, 'spike_keyring_storage_generations')) === 1, 180_000);
  const ids = await keyIdsInDb(stack, 'sqlite');
  assert.deepEqual([...ids.keys()], [await storageKeyId()], JSON.stringify([...ids]));
  await allWritesReadable(stack, written);
});
