/**
 * The decision pacer (FI-13): a caller whose decisions can be costly gets at most one decision
 * bound of pattern work per turn of the event loop, however many of its requests arrive at
 * once; a decision whose bound is cheap is never put off, whoever spent the turn.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshTurn as nextFreshTurn, spendTurnWork } from '../../lib/index.js';
import { stormPaths, stormPatterns } from '../../../test/helpers/redos-storm.js';
import { pol } from '../../../test/helpers/policy-fixtures.js';
import { PolicyEngine } from './engine.js';
import { CHEAP_DECISION, DecisionPacer, PATTERN_WORK_PER_TURN } from './pacer.js';
import { SpiffeId } from '../../spiffe/index.js';

const ATTACKER = SpiffeId.parse('spiffe://t/attacker');
const LITERAL = SpiffeId.parse('spiffe://t/literal');
const TEAMS = SpiffeId.parse('spiffe://t/teams');
const OPERATOR = SpiffeId.parse('spiffe://t/operator');
const GATES = ['spike/system/acl', 'spike/system/secret', 'spike/system/cipher/exec'];

function setup(): { engine: PolicyEngine; pacer: DecisionPacer } {
  const engine = new PolicyEngine({ onPatternWork: spendTurnWork });
  engine.load([
    ...stormPatterns(12).map((p, i) => pol(`storm-${i}`, '^spiffe://t/attacker$', p, ['read', 'list'])),
    pol('literal', '^spiffe://t/literal$', 'apps/one/db', ['read']),
    // 60 ordinary regex policies: many patterns, each cheap, each behind its own literal prefix.
    ...Array.from({ length: 60 }, (_, k) => pol(`team-${k}`, '^spiffe://t/teams$', `^secrets/team-${k}/[a-z0-9-]+/(db|cache|mq)/.*$`, ['read', 'list'])),
    // Inert costly patterns that every caller holds (an identity pattern matching all): their
    // prefix never matches, so they never run and must not make anyone's decisions costly.
    ...stormPatterns(8).map((p, i) => pol(`inert-${i}`, '^spiffe://t/.*$', `zzz/${p}`, ['read', 'list'])),
  ], 1);
  const pacer = new DecisionPacer(engine, { exempt: (p) => p.equals(OPERATOR), gatePaths: GATES });
  return { engine, pacer };
}

/** A turn whose count of pattern work has just restarted (other tests in a shared process may spend meanwhile). */
const freshTurn = (): Promise<void> => nextFreshTurn('pacer-test');

test('FI-13 pacer: ten costly requests at once are decided at most one bound per turn of the event loop', async () => {
  const { engine, pacer } = setup();
  await freshTurn();
  let turn = 0;
  let live = true;
  const tick = (): void => { turn++; if (live) setImmediate(tick); };
  setImmediate(tick);
  const workByTurn = new Map<number, number>();
  const paths = stormPaths(10, 500);
  try {
    await Promise.all(paths.map(async (path) => {
      for (const body of [undefined, { path }]) { // as the router: before the pre-check, then before the full check
        const wait = pacer.beforeDecision(ATTACKER, body);
        if (wait !== undefined) await wait;
      }
      const before = engine.patternWork;
      engine.allows(ATTACKER, path, 'read');
      workByTurn.set(turn, (workByTurn.get(turn) ?? 0) + engine.patternWork - before);
    }));
  } finally {
    live = false;
  }
  for (const [t, work] of workByTurn) assert.ok(work <= PATTERN_WORK_PER_TURN, `turn ${t}: ${work} units`);
  assert.equal(workByTurn.size, 10, 'one costly decision per turn');
  assert.ok([...workByTurn.values()].reduce((a, b) => a + b) > 5 * PATTERN_WORK_PER_TURN, 'the decisions were costly (the check meant something)');
});

test('FI-13 pacer: cheap decisions (literal patterns, many small prefixed ones, inert costly ones, the operator) are never put off, even in a turn another caller spent', async () => {
  const { engine, pacer } = setup();
  await freshTurn();
  engine.allows(ATTACKER, stormPaths(1, 500)[0]!, 'read'); // spends most of the turn
  const wait = pacer.beforeDecision(ATTACKER, { path: stormPaths(2, 500)[1]! });
  assert.ok(wait instanceof Promise, 'a second costly decision waits for a later turn');
  for (const peer of [LITERAL, TEAMS, OPERATOR]) {
    assert.equal(pacer.beforeDecision(peer), undefined, `${peer.toString()}: pre-check`);
    assert.equal(pacer.beforeDecision(peer, { path: 'secrets/team-7/app/db/creds' }), undefined, `${peer.toString()}: full check`);
    assert.equal(pacer.fits(peer, 'secrets/team-7/app/db/creds', 'list'), true, `${peer.toString()}: listing`);
  }
  assert.ok(engine.decisionBound(TEAMS, 'secrets/team-7/app/db/creds', 'read') <= CHEAP_DECISION);
  assert.equal(engine.decisionBound(LITERAL, 'zzz/whatever', 'read') > 0, true, 'the inert patterns do run on their own prefix');
  assert.equal(pacer.fits(ATTACKER, stormPaths(3, 500)[2]!, 'list'), false, 'a costly listing decision waits');
  await wait;
});

test('FI-13 pacer: a decision is bounded by the policies in force when it is made (costly policies added mid-listing are paced at once)', async () => {
  const { engine, pacer } = setup();
  const newcomer = SpiffeId.parse('spiffe://t/newcomer');
  engine.apply({ kind: 'put', policy: pol('newcomer-literal', '^spiffe://t/newcomer$', 'lst/one', ['list']) }, engine.changeBase(), engine.generation + 1);
  await freshTurn();
  engine.allows(ATTACKER, stormPaths(1, 500)[0]!, 'read'); // spends most of the turn
  const path = `lst/${stormPaths(4, 300)[3]!}`;
  assert.equal(pacer.fits(newcomer, path, 'list'), true, 'literal only: fits');
  stormPatterns(12).forEach((p, i) => {
    assert.ok(engine.apply({ kind: 'put', policy: pol(`newcomer-${i}`, '^spiffe://t/newcomer$', `lst/${p}`, ['list']) }, engine.changeBase(), engine.generation + 1));
  });
  assert.equal(pacer.fits(newcomer, path, 'list'), false, 'with costly patterns now: paced');
});
