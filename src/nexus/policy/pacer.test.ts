/**
 * FI-13: costly decisions arriving together are spread over turns of the event loop; cheap
 * ones never wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DECISION_WORK } from './engine.js';
import { DecisionPacer, MAX_WORK_PER_TURN } from './pacer.js';

/** Runs `n` "requests" that arrive in one turn: each asks the pacer, then does `work` units. */
async function burst(n: number, work: number): Promise<number[]> {
  const engine = { patternWork: 0 };
  const pace = new DecisionPacer(engine).beforeDecision;
  let turn = 0;
  let live = true;
  const tick = (): void => { turn++; if (live) setImmediate(tick); };
  setImmediate(tick);
  const decidedIn: number[] = [];
  await Promise.all(Array.from({ length: n }, async () => {
    const wait = pace();
    if (wait !== undefined) await wait;
    decidedIn.push(turn);
    engine.patternWork += work;
  }));
  live = false;
  return decidedIn;
}

test('FI-13 pacer: ten decisions that each need the whole budget, arriving together, are decided over several turns (at most two budgets of work per turn)', async () => {
  const turns = await burst(10, MAX_DECISION_WORK);
  const perTurn = new Map<number, number>();
  for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
  assert.ok([...perTurn.values()].every((n) => n * MAX_DECISION_WORK <= MAX_WORK_PER_TURN + MAX_DECISION_WORK), `decisions per turn: ${[...perTurn.values()].join(',')}`);
  assert.ok(perTurn.size >= 5, `spread over ${perTurn.size} turns`);
});

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

test('FI-13 pacer: cheap decisions (ordinary policies) are never put off', async () => {
  const turns = await burst(200, 2_000);
  assert.equal(new Set(turns).size, 1, 'all decided in the turn they arrived');
});
