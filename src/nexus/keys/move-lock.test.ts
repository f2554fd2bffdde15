/**
 * One sharing move at a time in a process: a root-key rotation refused because a move runs
 * (`move_in_progress`) still calls its move's `done` (rotation.ts, in `finally`); that must not
 * release the running move's lock, or a second move could start beside it in the same process
 * (on a store no other process writes there is no lease behind the lock).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { bootstrapped, mover, urls } from '../../../test/helpers/fake-keepers.js';
import { MoveError } from './move.js';

test('a rotation refused while a refresh runs leaves the refresh its lock: a second move is still refused, the first finishes', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  let reached!: () => void;
  const atPush = new Promise<void>((r) => (reached = r));
  let resume!: () => void;
  const held = new Promise<void>((r) => (resume = r));
  const m = mover(store, keys, k, async (step) => {
    if (step === 'after-pending-push') {
      reached();
      await held;
    }
  });
  const refresh = m.move('refresh', { threshold: 2, shares: 3, peers });
  await atPush;
  const rot = m.forRotation();
  const fresh = RootKey.generate();
  try {
    await assert.rejects(rot.stage(fresh), (e: unknown) => e instanceof MoveError && e.code === 'move_in_progress');
    rot.done?.(); // as RootRotation does in its finally
    assert.equal(m.running(), true, 'the refresh still holds the lock');
    assert.ok(m.inFlight(), 'and its in-flight state (the probe re-pushes from it)');
    await assert.rejects(m.move('refresh', { threshold: 2, shares: 3, peers }), (e: unknown) => e instanceof MoveError && e.code === 'move_in_progress');
  } finally {
    resume();
    fresh.destroy();
  }
  assert.equal((await refresh).epoch, 2);
  assert.equal(m.running(), false);
  root.destroy();
});
