/**
 * Keeper set and threshold changes on the real binaries (issue 16 §2): bootstrapped as
 * 5-of-3 (five Keepers, threshold 3), Nexus restarted with SPIKE_NEXUS_SHAMIR_SHARES=3,
 * SPIKE_NEXUS_SHAMIR_THRESHOLD=2 and the first three Keepers recovers with the STORED
 * sharing and moves it to 3-of-2 on those Keepers (same root key: every secret reads
 * back); it then comes back from those three alone (Keepers 4 and 5 down); restarted with
 * the original settings it moves back to 5-of-3 and again recovers after a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Stack } from '../helpers/stack.js';

const nexusEnv: Record<string, string> = {};
let stack: Stack;
const SECRETS: Record<string, string> = { 'reshare/a': 'alpha', 'reshare/b': 'beta' };

before(async () => {
  stack = await Stack.start({ keepers: 5, threshold: 3, nexusEnvOf: { 1: nexusEnv } });
  const c = await stack.client('pilot');
  for (const [p, v] of Object.entries(SECRETS)) await c.putSecret(p, { v });
});

after(async () => {
  await stack?.stop();
});

async function waitSharing(threshold: number, shares: number, epoch: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const c = await stack.client('pilot');
      const info = await c.getCommitments();
      last = JSON.stringify({ t: info.threshold, n: info.shares, e: info.epoch });
      if (info.threshold === threshold && info.shares === shares && info.epoch === epoch) return;
    } catch { /* not ready yet */ }
    await sleep(250);
  }
  assert.fail(`sharing did not become ${shares}-of-${threshold} at epoch ${epoch}; last ${last}`);
}

async function restartNexus(): Promise<void> {
  await stack.killNexus();
  await stack.startNexus();
  await stack.waitReady();
}

async function secretsReadable(): Promise<void> {
  const c = await stack.client('pilot');
  for (const [p, v] of Object.entries(SECRETS)) assert.deepEqual({ ...(await c.getSecret(p)) }, { v });
}

test('5-of-3 → 3-of-2 on Keepers 1..3 at start-up: same key; recovers from those three alone', async () => {
  Object.assign(nexusEnv, {
    SPIKE_NEXUS_SHAMIR_SHARES: '3', SPIKE_NEXUS_SHAMIR_THRESHOLD: '2', SPIKE_NEXUS_KEEPER_PEERS: stack.keeperUrls.slice(0, 3).join(','),
  });
  await restartNexus();
  await waitSharing(2, 3, 2);
  await secretsReadable();
  assert.match(stack.logs(stack.nexusName()), /moving the sharing to the configured Keepers/);
  await stack.killKeeper(4);
  await stack.killKeeper(5);
  await restartNexus();
  await secretsReadable();
});

test('3-of-2 → 5-of-3 again (Keepers 4 and 5 restarted empty): same key; recovers after a restart', async () => {
  for (const k of Object.keys(nexusEnv)) delete nexusEnv[k];
  await stack.startKeeper(4);
  await stack.startKeeper(5);
  await restartNexus();
  await waitSharing(3, 5, 3);
  await secretsReadable();
  await restartNexus();
  await waitSharing(3, 5, 3);
  await secretsReadable();
});
