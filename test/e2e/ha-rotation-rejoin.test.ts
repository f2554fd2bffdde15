/**
 * Two lone spike-nexus processes (no workers) on ONE PostgreSQL database: a root-key rotation
 * through instance 1 leaves instance 2 holding the old key (stale: readiness
 * `root_rotated_elsewhere`, 503 `state_not_ready`). Instance 2 must recover the new key from
 * the Keepers by itself (src/nexus/rejoin.ts) — no restart by the test, the same process —
 * and then serve the data written before and after the rotation, write again, and never
 * raise the rollback alarm. Before rejoin.ts it stayed not ready until restarted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack } from '../helpers/stack.js';

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 150_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

describe('root-key rotation through one of two lone Nexus instances on PostgreSQL', () => {
  let stack: Stack;
  let one: NexusClient;
  let two: NexusClient;

  before(async () => {
    stack = await Stack.start({ backend: 'postgres', nexusCount: 2, ops: true, nexusEnv: { SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: '2s' } });
    one = await stack.client('pilot', { urls: [stack.nexusUrls[0]!] });
    two = await stack.client('pilot', { urls: [stack.nexusUrls[1]!] });
  });
  after(async () => {
    await stack?.stop();
  });

  test('the other instance goes stale, recovers the new key from the Keepers in-process, serves the rotated data; no rollback alarm', async () => {
    await one.putSecret('rejoin/before', { v: 'before' });
    assert.equal((await two.getSecret('rejoin/before'))['v'], 'before');
    const pid = stack.pid(stack.nexusName(2));
    assert.ok(pid !== undefined);

    await one.rotateRootKey();
    await one.putSecret('rejoin/after', { v: 'after' });

    // Instance 2 notices within its periodic anchor look (5 s) and is not ready meanwhile.
    const name2 = stack.nexusName(2);
    await until('instance 2 to see the rotation elsewhere', async () => /"reason":"root_rotated_elsewhere"/.test(stack.logs(name2)));
    await until('instance 2 to serve the data written after the rotation', async () => (await two.getSecret('rejoin/after'))['v'] === 'after');
    assert.equal((await two.getSecret('rejoin/before'))['v'], 'before', 'written before the rotation, re-encrypted under the new key');
    await two.putSecret('rejoin/from-two', { v: 'two' });
    assert.equal((await one.getSecret('rejoin/from-two'))['v'], 'two');
    const ready = await fetch(`${stack.nexusOpsUrl(2)}/readyz?verbose=1`);
    assert.equal(ready.status, 200, await ready.text());

    const logs = stack.logs(name2);
    assert.equal(stack.pid(name2), pid, 'the same process: no restart');
    assert.equal(count(logs, /root key recovered from keepers/), 2, 'recovered once at start-up and once after the rotation');
    assert.match(logs, /the old root key is dropped; recovering the new one/);
    assert.equal(count(logs, /"rollback check passed"/), 2, 'the start-up rollback check ran again under the new key');
    assert.doesNotMatch(logs, /state_rollback_detected|STATE ROLLBACK/);
  });
});
