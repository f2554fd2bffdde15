/** FI-13: the per-turn count of pattern work that ends a listing's slice early. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionPacer, MAX_WORK_PER_TURN } from './pacer.js';

test('FI-13 pacer: overTurn says when this turn\'s pattern work is spent (a listing then ends its slice), and a new turn starts afresh', async () => {
  const engine = { patternWork: 0 };
  const pacer = new DecisionPacer(engine);
  assert.equal(pacer.overTurn(), false);
  engine.patternWork += MAX_WORK_PER_TURN - 1;
  assert.equal(pacer.overTurn(), false);
  engine.patternWork += 1;
  assert.equal(pacer.overTurn(), true);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(pacer.overTurn(), false, 'counted from the start of the new turn');
});
