/**
 * Shared pieces of the key-lifecycle fault-injection e2e tests (share refresh, Keeper kill
 * inside a move, root-key rotation, PostgreSQL): what every Keeper holds (epochs only), a
 * small write load that remembers only acknowledged writes, the read-back check, recovery
 * shard export, and Nexus's test-only hold point (SPIKE_NEXUS_TEST_HOLD_AT/_FILE, see the
 * Nexus entry): `holdEnv` arms it, `waitHeld` waits until Nexus stopped there, `release`
 * lets it go on.
 */
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Stack } from './stack.js';
import { KeeperClient } from '../../src/keeper/client.js';
import { authorizeIf, WorkloadX509Source } from '../../src/spiffe/index.js';
import type { WireShare } from '../../src/protocol/index.js';

/** The stack identity `keeperEpochs` asks the Keepers with (a Nexus ID; pass it in `identities`). */
export const PROBE_IDENTITY = 'nexus-probe';

export type KeeperHolding = { epoch: number | undefined; pending: number | undefined } | null;

/** Every Keeper's epochs (null: no answer); share values are wiped at once. */
export async function keeperEpochs(stack: Stack): Promise<KeeperHolding[]> {
  const source = await WorkloadX509Source.open({ endpoint: stack.socket(PROBE_IDENTITY), timeoutMs: 10_000 });
  const kc = new KeeperClient({ source, authorizeKeeper: authorizeIf((id) => id.path.startsWith('/spike/keeper')), timeoutMs: 15_000, shareRecipients: [] });
  try {
    return await Promise.all(stack.keeperUrls.map((u) => kc.fetchShare(u).then((w: WireShare) => {
      w.value.fill(0);
      w.pendingShare?.value.fill(0);
      return { epoch: w.epoch, pending: w.pendingShare?.epoch };
    }, () => null)));
  } finally {
    await kc.close();
    source.close();
  }
}

/**
 * Polls `ok` until it holds, 10 ms after the first miss, doubling to every 100 ms: many of these
 * conditions hold within a few milliseconds (a write load's first acknowledgement, a hold
 * file). A check that itself took longer (an epoch poll opens three mTLS connections) waits
 * at least as long as it took before the next, so costly checks stay near one per 100 ms.
 * Fails after `ms` (generous: a loaded machine).
 */
export async function waitFor(what: string, ok: () => Promise<boolean> | boolean, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let pause = 10; Date.now() < deadline;) {
    const t0 = Date.now();
    if (await Promise.resolve().then(ok).catch(() => false)) return;
    pause = Math.min(100, Math.max(pause, Date.now() - t0));
    await sleep(pause);
    pause = Math.min(100, pause * 2);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/**
 * Waits until every Keeper holds epoch `e` as its current share and nothing pending (with
 * `pendingOk`: a pending share may be left over, e.g. from an abandoned move).
 */
export async function epochIs(stack: Stack, e: number, opts: { pendingOk?: boolean } = {}): Promise<void> {
  await waitFor(`every Keeper on epoch ${e}${opts.pendingOk === true ? '' : ' only'}`, async () =>
    (await keeperEpochs(stack)).every((k) => k !== null && k.epoch === e && (opts.pendingOk === true || k.pending === undefined)));
}

/** Waits until every Keeper holds one epoch above `from`, nothing pending; returns it. */
export async function epochAbove(stack: Stack, from: number): Promise<number> {
  let e = 0;
  await waitFor(`every Keeper on one epoch above ${from}`, async () => {
    const all = await keeperEpochs(stack);
    e = all[0]?.epoch ?? 0;
    return e > from && all.every((k) => k !== null && k.epoch === e && k.pending === undefined);
  });
  return e;
}

/** The epoch the Keepers agree on now (asserts they do). */
export async function keeperEpoch(stack: Stack): Promise<number> {
  const all = await keeperEpochs(stack);
  const e = all[0]?.epoch;
  assert.ok(e !== undefined && all.every((k) => k?.epoch === e), JSON.stringify(all));
  return e;
}

const loads = new Set<() => Promise<void>>();

/** Stops every write load still running (a failed test leaves its load behind); call in `after`. */
export async function stopLoads(): Promise<void> {
  await Promise.all([...loads].map((stop) => stop()));
}

/**
 * Pause after each acknowledged write of a {@link writeLoad}: about 40 writes a second, far
 * more than the tests need to land writes before, during and after a move, without burning a
 * core for the whole test (the suite runs two files at a time on two cores).
 */
const WRITE_LOAD_PACE_MS = 25;

/**
 * One writer of fresh secrets (`load/<tag>/<i>`) until stopped; `written` gets a path only
 * once Nexus acknowledged it. `acked()` counts this load's acknowledged writes.
 */
export function writeLoad(stack: Stack, written: Map<string, string>, tag: string): { stop: () => Promise<void>; acked: () => number } {
  let stopped = false;
  let count = 0;
  const run = (async () => {
    const c = await stack.client('pilot', { timeoutMs: 5000 });
    for (let i = 0; !stopped; i++) {
      const p = `load/${tag}/${i}`;
      const v = `v-${tag}-${i}`;
      try {
        await c.putSecret(p, { v });
        written.set(p, v);
        count++;
        await sleep(WRITE_LOAD_PACE_MS);
      } catch {
        await sleep(100); // Nexus down or not serving: not acknowledged
      }
    }
  })();
  const stop = async (): Promise<void> => {
    stopped = true;
    loads.delete(stop);
    await run;
  };
  loads.add(stop);
  return { stop, acked: () => count };
}

/**
 * Every acknowledged write reads back with its value. Eight reads at a time: a load leaves
 * thousands of paths, and one read after another spent most of its time waiting on the
 * round trip.
 */
export async function allWritesReadable(stack: Stack, written: Map<string, string>): Promise<void> {
  const c = await stack.client('pilot');
  const all = [...written];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < all.length) {
      const [p, v] = all[next++]!;
      assert.deepEqual({ ...(await c.getSecret(p)) }, { v }, p);
    }
  }));
}

/** Exports the break-the-glass shards into `dir`; their file paths. */
export async function recoverTo(stack: Stack, dir: string, n = 3): Promise<string[]> {
  const r = await stack.spike(['operator', 'recover', '--out', dir, '--force'], { identity: 'recover' });
  assert.equal(r.code, 0, r.stderr);
  return Array.from({ length: n }, (_, i) => path.join(dir, `spike.recovery.${i + 1}.txt`));
}

/** Whether `spike operator verify-shard` accepts the shard file. */
export async function shardVerifies(stack: Stack, file: string): Promise<boolean> {
  const v = await stack.spike(['operator', 'verify-shard', file], { identity: 'restore' });
  if (v.code !== 0) assert.match(v.stderr, /does NOT match/);
  return v.code === 0;
}

/** Environment that makes the next Nexus start hold (once) at `step`, on a file in `dir`. */
export function holdEnv(dir: string, step: string): Record<string, string> {
  return { SPIKE_NEXUS_TEST_HOLD_AT: step, SPIKE_NEXUS_TEST_HOLD_FILE: path.join(dir, `hold-${step}`) };
}

/** Waits until Nexus stopped at `step` (it created the hold file in `dir`). */
export async function waitHeld(dir: string, step: string): Promise<void> {
  await waitFor(`Nexus held at ${step}`, () => fs.existsSync(path.join(dir, `hold-${step}`)));
}

/** Lets a held Nexus go on. */
export function release(dir: string, step: string): void {
  fs.rmSync(path.join(dir, `hold-${step}`), { force: true });
}

/** Replaces the contents of a mutable per-instance env object (`nexusEnvOf`). */
export function setEnv(target: Record<string, string>, env: Record<string, string>): void {
  for (const k of Object.keys(target)) delete target[k];
  Object.assign(target, env);
}
