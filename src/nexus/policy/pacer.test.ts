/**
 * The decision pacer (FI-13): a caller whose decisions can be costly gets one whole decision
 * bound of pattern work per turn of the event loop, however many of its requests arrive at
 * once; a caller whose policies are cheap is never put off.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sliceTurn, spendTurnWork } from '../../lib/index.js';
import { stormPaths, stormPatterns } from '../../../test/helpers/redos-storm.js';
import { pol } from '../../../test/helpers/policy-fixtures.js';
import { MAX_DECISION_WORK, PolicyEngine } from './engine.js';
import { DecisionPacer, PATTERN_WORK_PER_TURN } from './pacer.js';
import { SpiffeId } from '../../spiffe/index.js';

const ATTACKER = SpiffeId.parse('spiffe://t/attacker');
const LITERAL = SpiffeId.parse('spiffe://t/literal');
const SMALL = SpiffeId.parse('spiffe://t/small');

function setup(): { engine: PolicyEngine; pacer: DecisionPacer } {
  const engine = new PolicyEngine({ onPatternWork: spendTurnWork });
  engine.load([
    ...stormPatterns(12).map((p, i) => pol(`storm-${i}`, '^spiffe://t/attacker$', p, ['read', 'list'])),
    pol('literal', '^spiffe://t/literal$', 'apps/one/db', ['read']),
    pol('small', '^spiffe://t/small$', '^secrets/team-[a-z0-9-]+/(db|cache)/.*$', ['read']),
  ], 1);
  return { engine, pacer: new DecisionPacer(engine) };
}

/** A turn of the loop, counted by an immediate that re-arms itself (the check phase ends each turn). */
function turnCounter(): { now(): number; stop(): void } {
  let turn = 0;
  let live = true;
  const tick = (): void => { turn++; if (live) setImmediate(tick); };
  setImmediate(tick);
  return { now: () => turn, stop: () => { live = false; } };
}

test('FI-13 pacer: ten costly requests at once are decided one per turn of the event loop, each within the per-turn budget', async () => {
  const { engine, pacer } = setup();
  assert.equal(pacer.worst(ATTACKER), MAX_DECISION_WORK);
  await sliceTurn(); // a fresh turn
  const turns = turnCounter();
  const workByTurn = new Map<number, number>();
  const paths = stormPaths(10, 500);
  try {
    await Promise.all(paths.map(async (path) => {
      const wait = pacer.beforeDecision(ATTACKER);
      if (wait !== undefined) await wait;
      const before = engine.patternWork;
      engine.allows(ATTACKER, path, 'read');
      const t = turns.now();
      workByTurn.set(t, (workByTurn.get(t) ?? 0) + engine.patternWork - before);
    }));
  } finally {
    turns.stop();
  }
  assert.equal(workByTurn.size, 10, `ten decisions in ten turns (turns used: ${workByTurn.size})`);
  for (const [t, work] of workByTurn) assert.ok(work <= PATTERN_WORK_PER_TURN, `turn ${t}: ${work} units`);
  assert.ok([...workByTurn.values()].reduce((a, b) => a + b) > 5 * PATTERN_WORK_PER_TURN, 'the decisions were costly (the check meant something)');
});

test('FI-13 pacer: a caller with literal or small path patterns decides at once, even in a turn another caller spent', async () => {
  const { engine, pacer } = setup();
  assert.equal(pacer.worst(LITERAL), 0);
  assert.ok(pacer.worst(SMALL) < PATTERN_WORK_PER_TURN / 20, `small: ${pacer.worst(SMALL)}`);
  await sliceTurn(); // a fresh turn
  assert.equal(pacer.beforeDecision(ATTACKER), undefined, 'the first decision of a turn never waits');
  engine.allows(ATTACKER, stormPaths(1, 500)[0]!, 'read'); // spends most of the turn
  const wait = pacer.beforeDecision(ATTACKER);
  assert.ok(wait instanceof Promise, 'a second costly decision waits for a turn of its own');
  assert.equal(pacer.beforeDecision(LITERAL), undefined, 'literal patterns: nothing to pace');
  assert.equal(pacer.listingTurnSpent(LITERAL), undefined);
  assert.equal(engine.allows(LITERAL, 'apps/one/db', 'read'), true);
  await wait;
  assert.equal(pacer.beforeDecision(SMALL), undefined, 'small patterns fit in the rest of a turn');
});
