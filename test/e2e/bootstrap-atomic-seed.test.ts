/**
 * CFG-03 with the real binaries: Bootstrap with one Keeper unreachable fails without leaving
 * a partial sharing that Nexus would use. Before: Keepers 1–2 kept (and served) the shares
 * Bootstrap gave them, so Nexus rebuilt the key from them (threshold 2) while Bootstrap
 * reported failure. After: shares are staged on every Keeper first and committed only once
 * all acknowledged (src/bootstrap/run.ts, src/keeper/slot.ts); the staged ones are never
 * served. Then: the Keeper comes back, a rerun succeeds, and a restarted Keeper is re-seeded
 * by Nexus.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { waitFor } from './secrets-helpers.js';

let stack: Stack;
let probe: Awaited<ReturnType<Stack['client']>>;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2, bootstrap: false });
  probe = await stack.client('pilot');
});
after(async () => {
  await stack?.stop();
});

function bootstrap(): ReturnType<Stack['run']> {
  return stack.run('spike-bootstrap', ['-init'], {
    ...stack.nexusEnv(),
    SPIFFE_ENDPOINT_SOCKET: stack.socket('bootstrap'),
    SPIKE_BOOTSTRAP_KEEPER_MAX_RETRIES: '3',
    SPIKE_BOOTSTRAP_KEEPER_RETRY_INITIAL_INTERVAL: '200ms',
    SPIKE_BOOTSTRAP_KEEPER_RETRY_MAX_INTERVAL: '500ms',
    SPIKE_BOOTSTRAP_INIT_VERIFICATION_TIMEOUT: '60s',
  }, undefined, 'bootstrap');
}

/** "keeper holds no share yet" lines Nexus logged for Keeper `pos` since the last clear. */
function noShareLines(pos: number): number {
  return stack.logs('nexus').split('\n').filter((l) => l.includes('keeper holds no share yet') && l.includes(`"keeperId":${pos}`)).length;
}

async function nexusState(): Promise<string> {
  try {
    await probe.listSecrets();
    return 'ready';
  } catch (e) {
    return (e as { code?: string }).code ?? 'error';
  }
}

test('CFG-03: Bootstrap with one Keeper unreachable fails and leaves nothing Nexus uses; the rerun succeeds', { timeout: 120_000 }, async () => {
  await stack.killKeeper(3);
  const failed = await bootstrap();
  assert.notEqual(failed.code, 0, 'Bootstrap must fail with a Keeper unreachable');
  assert.match(failed.stderr, /keeper 3/);

  // Nexus keeps polling Keepers 1 and 2 after the failed run: two full passes find no share
  // there (the staged shares are never served), and Nexus stays sealed.
  stack.clearLogs('nexus');
  await waitFor(async () => {
    if ((await nexusState()) === 'ready') throw new Error('Nexus became ready from a partial sharing');
    return noShareLines(1) >= 2 && noShareLines(2) >= 2;
  }, 30_000, 'two recovery passes that find no share on Keepers 1 and 2');
  assert.equal(await nexusState(), 'state_not_ready');
  assert.match(failed.stderr, /nothing was committed/);

  // The Keeper is back: the rerun stages and commits everywhere, Nexus rebuilds that key.
  await stack.startKeeper(3);
  const rerun = await bootstrap();
  assert.equal(rerun.code, 0, rerun.stderr.slice(-800));
  await stack.waitReady(30_000);
  await probe.putSecret('cfg03/marker', { v: 'ok' });
  assert.equal((await probe.getSecret('cfg03/marker'))?.['v'], 'ok');

  // A restarted Keeper (empty) is re-seeded by Nexus, not by Bootstrap.
  await stack.killKeeper(2);
  await stack.startKeeper(2);
  const seeded = (): boolean => stack.logs('keeper-2').split('\n')
    .some((l) => l.includes('share contributed') && l.includes('"outcome":"stored"') && l.includes('"from":"nexus"'));
  await waitFor(seeded, 30_000, 'Nexus re-seeding the restarted Keeper 2');
});
