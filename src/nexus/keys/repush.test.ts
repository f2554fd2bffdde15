/**
 * The share re-push while paused (a lone Nexus dropping a root key rotated elsewhere,
 * ../rejoin.ts): neither its periodic round nor the status probe's single push sends a share
 * of the old sharing; a push already in flight is waited for; `start` resumes both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KeeperClient } from '../../keeper/index.js';
import { bootstrapped, logger, urls } from '../../../test/helpers/fake-keepers.js';
import { SharePusher } from './repush.js';

test('repush: paused, neither the round nor pushTo sends a share; pause waits for a push in flight; start resumes', async () => {
  const peers = urls(3);
  const { keys, k } = await bootstrapped(2, peers);
  const base = k.client();
  const sent: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const client = { ...base, contribute: async (url: string, share: Parameters<KeeperClient['contribute']>[1]) => {
    sent.push(share.id ?? 0);
    if (sent.length === 1) await gate;
    return base.contribute(url, share);
  } } as KeeperClient;
  const pusher = new SharePusher({ peers, client, keys, logger, intervalMs: 60_000 });

  const first = pusher.pushTo(1);
  while (sent.length === 0) await sleep(1);
  let paused = false;
  const pausing = pusher.pause().then(() => { paused = true; });
  await sleep(20);
  assert.equal(paused, false, 'pause waits for the push in flight');
  release();
  await pausing;
  assert.equal(await first, true);

  assert.equal(await pusher.pushTo(2), false, 'the status probe\'s push is refused while paused');
  await pusher.pushNow();
  assert.deepEqual(sent, [1], 'no round while paused');

  pusher.start();
  await pusher.pushNow();
  assert.deepEqual([...sent].sort(), [1, 1, 2, 3], 'start resumes the round');
  assert.equal(await pusher.pushTo(2), true);
  await pusher.stop();
});
