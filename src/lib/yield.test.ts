/** sliceTurn (FI-13): one waiter per turn of the event loop, owners served in turn. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sliceTurn } from './yield.js';

test('FI-13 sliceTurn: one waiter per turn of the event loop; owners served round robin, so one owner\'s many waiters delay another\'s by one turn, not by all of them', async () => {
  let turn = 0;
  let live = true;
  const tick = (): void => { turn++; if (live) setImmediate(tick); };
  setImmediate(tick);
  const order: string[] = [];
  const turns: number[] = [];
  const wait = (owner: string, label: string): Promise<void> => sliceTurn(owner).then(() => { order.push(label); turns.push(turn); });
  const all = [
    ...Array.from({ length: 10 }, (_, i) => wait('attacker', `a${i}`)),
    wait('victim', 'v0'),
  ];
  await Promise.all(all);
  live = false;
  assert.deepEqual(order.slice(0, 3), ['a0', 'v0', 'a1'], 'the victim is served second, not eleventh');
  assert.equal(new Set(turns).size, turns.length, 'never two in one turn');
});

