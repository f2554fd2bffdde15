/** Costly work counted per turn of the event loop (FI-13, turn-work.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshTurn, freshTurnWaiting, spendTurnWork, turnWorkFits } from './turn-work.js';

const later = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('FI-13 turn work: what a turn spent counts until a timers phase after a check phase', async () => {
  // A turn of its own (other work in a shared test process, e.g. a matcher warm-up, may have
  // spent in the current one).
  await freshTurn();
  assert.equal(turnWorkFits(10_000, 1000), true, 'nothing spent: anything fits (one decision is never refused a turn)');
  spendTurnWork(600);
  assert.equal(turnWorkFits(400, 1000), true);
  assert.equal(turnWorkFits(401, 1000), false);
  await new Promise((r) => setImmediate(r)); // the check phase of the same turn
  assert.equal(turnWorkFits(401, 1000), false, 'the check phase is part of the same turn');
  await freshTurn();
  assert.equal(turnWorkFits(1000, 1000), true, 'a later turn starts afresh');
});

test('FI-13 turn work: a waiter for a turn of its own is served even while small work is done in every turn, and finds nothing spent', async () => {
  // Work in every turn (as a busy server's cheap decisions): the count is never 0 when a
  // check-phase release would look, but a waiter let go right after a restart always finds it so.
  let live = true;
  const noise = (): void => {
    spendTurnWork(10);
    if (live) setImmediate(noise);
  };
  setImmediate(noise);
  try {
    await later(5);
    const served: boolean[] = [];
    const waits = ['a', 'b', 'a', 'c'].map((owner) => freshTurn(owner).then(() => {
      served.push(turnWorkFits(1_000_000, 1_000_000));
      spendTurnWork(1_000_000); // the waiter's own costly work fills its turn
    }));
    assert.equal(freshTurnWaiting(), true, 'newcomers can see that work waits');
    await Promise.all(waits);
    assert.deepEqual(served, [true, true, true, true], 'each waiter found its turn with nothing spent');
    assert.equal(freshTurnWaiting(), false);
  } finally {
    live = false;
  }
});
