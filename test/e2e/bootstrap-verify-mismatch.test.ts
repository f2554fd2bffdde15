/**
 * CFG-04 with the real binaries: Bootstrap's verify step against a Nexus that holds a
 * different root key. One agent, six Keepers: Nexus uses Keepers 1–3 and is initialised by a
 * first Bootstrap run (key A). A second run with `SPIKE_BOOTSTRAP_FORCE=true` is pointed at
 * Keepers 4–6 (empty, so they accept its shares of a new key B) and at the same Nexus: its
 * probe, sealed under B's verify key, does not open under A's (the ready Nexus answers 500,
 * not the 503 of a Nexus still rebuilding), so Bootstrap reports the mismatch at once and
 * exits non-zero (before: it retried for the whole verification timeout, 30 min by default,
 * then blamed a slow Nexus); Nexus keeps key A (its data stays readable) and Keepers 1–3
 * keep their shares.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { binPath } from '../helpers/bin.js';
import { KeeperClient } from '../../src/keeper/client.js';
import { WorkloadX509Source, authorizeIf } from '../../src/spiffe/index.js';
import { waitFor } from './secrets-helpers.js';

const TD = 'spike.ist';
let stack: Stack;

before(async () => {
  stack = await Stack.start({ keepers: 6, threshold: 2, bootstrap: false, identities: { 'nexus-probe': `spiffe://${TD}/spike/nexus/probe` } });
  await stack.killNexus();
  await stack.startCustom('nexus-a', binPath('spike-nexus'), nexusEnv(), 'spike-nexus ready');
});
after(async () => {
  await stack?.stop();
});

const firstThree = (): string => stack.keeperUrls.slice(0, 3).join(',');
const lastThree = (): string => stack.keeperUrls.slice(3).join(',');

function nexusEnv(): Record<string, string> {
  return { ...stack.nexusEnv(), SPIKE_NEXUS_SHAMIR_SHARES: '3', SPIKE_NEXUS_KEEPER_PEERS: firstThree() };
}

function bootstrap(peers: string, force: boolean): ReturnType<Stack['run']> {
  return stack.run('spike-bootstrap', ['-init'], {
    ...nexusEnv(),
    SPIFFE_ENDPOINT_SOCKET: stack.socket('bootstrap'),
    SPIKE_NEXUS_KEEPER_PEERS: peers,
    SPIKE_BOOTSTRAP_INIT_VERIFICATION_TIMEOUT: '120s',
    ...(force ? { SPIKE_BOOTSTRAP_FORCE: 'true' } : {}),
  });
}

async function heldShares(urls: string[]): Promise<string[]> {
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('nexus-probe'), timeoutMs: 10_000 });
  const kc = new KeeperClient({ source, authorizeKeeper: authorizeIf((id) => id.path.startsWith('/spike/keeper')), timeoutMs: 10_000, shareRecipients: [] });
  try {
    return await Promise.all(urls.map(async (u) => Buffer.from((await kc.fetchShare(u)).value).toString('hex')));
  } finally {
    await kc.close();
    source.close();
  }
}

test('CFG-04: Bootstrap verifying against a Nexus that holds another key reports the mismatch and exits non-zero; nothing changes', { timeout: 180_000 }, async () => {
  const first = await bootstrap(firstThree(), false);
  assert.equal(first.code, 0, first.stderr.slice(-800));
  const pilot = await stack.client('pilot');
  await pilot.putSecret('cfg04/marker', { v: 'key-a' });
  const before = await heldShares(stack.keeperUrls.slice(0, 3));

  const t0 = Date.now();
  const second = await bootstrap(lastThree(), true);
  assert.notEqual(second.code, 0, 'a verify mismatch must fail Bootstrap');
  // Named as a mismatch at once, not after the verification timeout as a Nexus that "did not
  // confirm the new root key in time".
  assert.ok(Date.now() - t0 < 60_000, `Bootstrap took ${Date.now() - t0} ms to fail`);
  assert.match(second.stderr, /different root key/);
  // Bootstrap's new shares did reach Keepers 4–6 (so the failure came from the verify step) …
  assert.equal((await heldShares(stack.keeperUrls.slice(3))).length, 3);
  // … and nothing Nexus uses changed: same data, same shares on Keepers 1–3.
  await waitFor(async () => (await pilot.getSecret('cfg04/marker').catch(() => undefined))?.['v'] === 'key-a', 10_000, 'marker readable');
  assert.deepEqual(await heldShares(stack.keeperUrls.slice(0, 3)), before);
});
