/**
 * `spike operator reshare` on the real binaries (issue 16 §2, "or by command"): bootstrapped
 * as 4-of-2 (four Keepers, threshold 2). With nothing changed the command says "Nothing to
 * change" and moves nothing. Nexus restarted with SPIKE_NEXUS_SHAMIR_THRESHOLD=3 while
 * Keeper 4 is down: its start-up Keeper set change fails and the stored sharing stays; the
 * command with Keeper 4 still down fails with one clear line; with Keeper 4 back (empty)
 * it moves the sharing to 4-of-3 (same root key, every secret reads back), says loudly
 * that recovery shards must be saved again, and a restarted Nexus recovers from it.
 * Only the superuser may run it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEEPER_DOWN_TIMERS, Stack } from '../helpers/stack.js';

const nexusEnv: Record<string, string> = {};
let stack: Stack;
const SECRETS: Record<string, string> = { 'reshare-cmd/a': 'alpha', 'reshare-cmd/b': 'beta' };

before(async () => {
  // Keeper 4 is down for a while: a Nexus start waits SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW (3 s by
  // default) for it, and each move gives up on it after 6 attempts with backoff (≈ 6 s by
  // default); shortened here, the failures stay the same.
  stack = await Stack.start({ keepers: 4, threshold: 2, nexusEnvOf: { 1: nexusEnv }, nexusEnv: KEEPER_DOWN_TIMERS });
  const c = await stack.client('pilot');
  for (const [p, v] of Object.entries(SECRETS)) await c.putSecret(p, { v });
});

after(async () => {
  await stack?.stop();
});

async function sharing(): Promise<{ threshold: number; shares: number; epoch: number }> {
  const info = await (await stack.client('pilot')).getCommitments();
  return { threshold: info.threshold, shares: info.shares, epoch: info.epoch };
}

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await Promise.resolve().then(ok).catch(() => false)) return;
    await sleep(200);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function secretsReadable(): Promise<void> {
  const c = await stack.client('pilot');
  for (const [p, v] of Object.entries(SECRETS)) assert.deepEqual({ ...(await c.getSecret(p)) }, { v });
}

test('reshare with the settings unchanged: "Nothing to change", exit 0, the epoch stays', async () => {
  const r = await stack.spike(['operator', 'reshare']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Nothing to change/);
  assert.doesNotMatch(r.stdout, /NO LONGER WORK/);
  assert.deepEqual(await sharing(), { threshold: 2, shares: 4, epoch: 1 });
  const j = await stack.spike(['operator', 'reshare', '--json']);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), { ok: true, changed: false, epoch: 1, threshold: 2, shares: 4, recoveryShardsStale: false });
});

test('reshare: only the superuser; other identities are refused and nothing moves', async () => {
  for (const identity of ['recover', 'restore', 'lite']) {
    const c = await stack.client(identity);
    await assert.rejects(c.reshare(), (e: unknown) => (e as { code?: string }).code === 'access_unauthorized', identity);
  }
  assert.equal((await sharing()).epoch, 1);
});

test('start-up Keeper set change fails (Keeper 4 down) → the command fails with one line while it is down, then moves 4-of-2 → 4-of-3 once it is back; same key; a restarted Nexus recovers', async () => {
  await stack.killKeeper(4);
  nexusEnv['SPIKE_NEXUS_SHAMIR_THRESHOLD'] = '3';
  await stack.killNexus();
  await stack.startNexus();
  await stack.waitReady();
  // the start-up attempt runs and fails (Keeper 4 unreachable); the next one is 30 s later
  await waitFor('the start-up Keeper set change to fail', () => /Keeper set change failed/.test(stack.logs(stack.nexusName())));
  assert.deepEqual(await sharing(), { threshold: 2, shares: 4, epoch: 1 }, 'the stored sharing stays in force');

  const down = await stack.spike(['operator', 'reshare']);
  assert.notEqual(down.code, 0);
  assert.equal(down.stderr.trim().split('\n').length, 1, down.stderr);
  assert.match(down.stderr, /Keeper set change did not run: .*not every configured Keeper acknowledged/);
  assert.equal((await sharing()).threshold, 2);

  await stack.startKeeper(4);
  const r = await stack.spike(['operator', 'reshare']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /OK: Keeper set changed \(epoch \d+; any 3 of 4 Keepers/);
  assert.match(r.stdout, /RECOVERY SHARDS SAVED BEFORE THIS KEEPER SET CHANGE NO LONGER WORK/);
  assert.match(r.stdout, /spike operator recover/);
  const after = await sharing();
  assert.deepEqual([after.threshold, after.shares], [3, 4]);
  assert.ok(after.epoch >= 3, `epochs of abandoned moves are never reused (epoch ${after.epoch})`);
  await secretsReadable();
  assert.match(stack.logs(stack.nexusName()), /reshare requested by the operator/);

  const again = await stack.spike(['operator', 'reshare']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Nothing to change/);

  await stack.killNexus();
  await stack.startNexus();
  await stack.waitReady();
  assert.deepEqual(await sharing(), after);
  await secretsReadable();
});
