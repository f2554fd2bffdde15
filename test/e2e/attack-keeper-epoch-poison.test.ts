/**
 * ATTACK keeper epoch poisoning (issue 11, item 1), with the real binaries and real mTLS.
 *
 * Reproduction against the old code: a Keeper that restarts holds nothing, so it takes a
 * share from whoever sends one first. The Bootstrap identity (a one-shot credential that
 * may still exist after initialisation) sends each restarted Keeper a junk share with
 * epoch 2^53−1. Every later re-push from Nexus (epoch 1, the stored sharing's epoch) was
 * then refused with 409 `keeper_stale_epoch`, and recovery skipped the Keeper as stale.
 * Done to n−t+1 Keepers, a restarted Nexus could no longer rebuild its key unaided.
 *
 * Here (n=3, t=2, so two Keepers are poisoned): Nexus is frozen (SIGSTOP) so that none of
 * its pushes lands between a Keeper's restart and the poisoning; Keepers 1 and 2 are
 * restarted empty; the Bootstrap identity then sends each the strongest poison the Keeper
 * accepts, trying epoch 2^53−1 first, then smaller epochs down to 1 (a fixed build refuses
 * every Bootstrap epoch but 1 at the door, and accepts an epoch-1 share into an empty slot
 * so that an interrupted bootstrap can be rerun). Nexus is thawed. Expected: within a few
 * re-push intervals both Keepers hold their original share at epoch 1 again (Nexus wins over
 * anything Bootstrap put there), and a Nexus restarted afterwards recovers from the Keepers
 * alone and serves the secret written before.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { KeeperClient, KeeperCallError } from '../../src/keeper/client.js';
import { authorizeIf, WorkloadX509Source } from '../../src/spiffe/index.js';
import type { WireShare } from '../../src/protocol/index.js';

const isKeeperId = authorizeIf((id) => id.path.startsWith('/spike/keeper/'));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const POISON_EPOCHS = [Number.MAX_SAFE_INTEGER, 2 ** 32, 2 ** 31, 1000, 2, 1];

async function keeperClient(stack: Stack, identity: string): Promise<{ client: KeeperClient; close(): Promise<void> }> {
  const source = await WorkloadX509Source.open({ endpoint: stack.socket(identity), timeoutMs: 15_000 });
  const client = new KeeperClient({ source, authorizeKeeper: isKeeperId, timeoutMs: 5000, shareRecipients: stack.keeperUrls });
  return { client, async close() { await client.close(); source.close(); } };
}

async function sharesOf(stack: Stack): Promise<Array<WireShare | null>> {
  const k = await keeperClient(stack, 'nexus');
  try {
    return await Promise.all(stack.keeperUrls.map((u) => k.client.fetchShare(u).catch(() => null)));
  } finally {
    await k.close();
  }
}

const hex = (w: WireShare | null | undefined): string => (w ? Buffer.from(w.value).toString('hex') : 'none');

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('ATTACK keeper epoch poisoning', { concurrency: false }, () => {
  let stack: Stack;

  before(async () => {
    stack = await Stack.start({
      keepers: 3, threshold: 2,
      nexusEnv: { SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: '1s' },
    });
  });
  after(async () => {
    await stack?.stop();
  });

  test('ATTACK keeper epoch poisoning: Bootstrap sends epoch 2^53−1 to restarted Keepers; Nexus still re-pushes and recovers', async () => {
    const pilot = await stack.client('pilot');
    await pilot.putSecret('attack/epoch', { k: 'still-here' });
    const original = await sharesOf(stack);
    for (const w of original) assert.equal(w?.epoch, 1, 'every Keeper starts at epoch 1');

    const nexusPid = stack.pid('nexus')!;
    const poisoned = [1, 2]; // n − t + 1 = 2 Keepers
    const accepted: number[] = [];
    process.kill(nexusPid, 'SIGSTOP');
    try {
      for (const i of poisoned) {
        await stack.killKeeper(i);
        await stack.startKeeper(i);
      }
      const boot = await keeperClient(stack, 'bootstrap');
      try {
        for (const i of poisoned) {
          let got: number | undefined;
          for (const epoch of POISON_EPOCHS) {
            try {
              await boot.client.contribute(stack.keeperUrls[i - 1]!, { value: new Uint8Array(32).fill(0x40 + i), id: i, epoch, commitments: undefined });
              got = epoch;
              break;
            } catch (e) {
              assert.ok(e instanceof KeeperCallError && e.status !== undefined && e.status >= 400 && e.status < 500,
                `keeper ${i}, epoch ${epoch}: refused cleanly (${String((e as Error).message)})`);
            }
          }
          assert.notEqual(got, undefined, `keeper ${i}: an empty Keeper accepts some Bootstrap share (interrupted bootstrap rerun)`);
          accepted.push(got!);
        }
      } finally {
        await boot.close();
      }
      const held = await sharesOf(stack);
      for (const [n, i] of poisoned.entries()) {
        assert.equal(held[i - 1]?.epoch, accepted[n], `keeper ${i} holds the poison before Nexus wakes up`);
        assert.notEqual(hex(held[i - 1]), hex(original[i - 1]));
      }
    } finally {
      process.kill(nexusPid, 'SIGCONT');
    }

    // Nexus re-pushes (every 1 s): the poisoned Keepers must end up with their own share, epoch 1.
    await waitFor(async () => {
      const now = await sharesOf(stack);
      return poisoned.every((i) => now[i - 1]?.epoch === 1 && hex(now[i - 1]) === hex(original[i - 1]));
    }, 30_000, `Nexus re-push to the poisoned Keepers (they accepted Bootstrap epochs ${accepted.join(', ')})`);

    // A Nexus restarted now recovers from the Keepers alone.
    await stack.killNexus();
    await stack.startNexus();
    await stack.waitReady(30_000);
    const again = await stack.client('pilot');
    assert.deepEqual({ ...(await again.getSecret('attack/epoch')) }, { k: 'still-here' });
    assert.doesNotMatch(stack.logs('nexus'), /still-here/);
  });
});
