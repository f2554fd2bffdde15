// test-process: own
// It measures the whole process's CPU time.
/**
 * FI-13 (ReDoS storm), engine level: an identity allowed to write policies stores 100 patterns
 * built to be as costly as the write-time bound allows, then sends requests on 500-character
 * paths (the path length limit) that none of them allow. What is asserted does not depend on
 * the machine's speed or load: the work of every decision is bounded (a count), and the time
 * a decision takes is a small fraction of running all 100 patterns (a ratio measured in the same
 * process, interleaved, so load cancels out). The wall-clock figures (event-loop delay) are in
 * docs/design/hostile-cases.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RE2JS } from 're2js';
import { PATH_LENGTH, stormPaths as paths, stormPatterns } from '../../../test/helpers/redos-storm.js';
import { pol } from '../../../test/helpers/policy-fixtures.js';
import { CallerCache } from './callers.js';
import { MAX_DECISION_WORK, PolicyEngine } from './engine.js';
import { MAX_PATTERN_PROGRAM, programSize } from './patterns.js';

const ATTACKER = 'spiffe://t/attacker';

function cpuMs(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

test('FI-13: 100 policies of near-bound catastrophic patterns, then 300 requests on 500-character paths: every decision within MAX_DECISION_WORK, each under a quarter of the unbounded cost; an ordinary policy still allows', () => {
  const patterns = stormPatterns(100);
  const engine = new PolicyEngine();
  const policies = patterns.map((p, i) => pol(`storm-${i}`, `^spiffe://t/attacker(/${i})?$`, p, ['read']));
  policies.push(pol('ordinary', '^spiffe://t/attacker$', '^secrets/team-[a-z0-9-]+/(db|cache)/.*$', ['read']));
  // As the policy route applies them: one write at a time, each compiled by its write.
  engine.load([], 1);
  policies.forEach((p, i) => assert.ok(engine.apply({ kind: 'put', policy: p }, 1 + i, 2 + i)));
  const compiled = patterns.map((p) => RE2JS.compile(p));
  const programs = compiled.map((re) => programSize(re) ?? Infinity);
  assert.ok(programs.every((n) => n <= MAX_PATTERN_PROGRAM && n > MAX_PATTERN_PROGRAM * 0.9), `near the bound: ${Math.min(...programs)}..${Math.max(...programs)}`);
  // Unbounded, a decision would run all 100: five times the budget and more.
  const unboundedWork = programs.reduce((a, n) => a + n * (PATH_LENGTH + 1), 0);
  assert.ok(unboundedWork > 5 * MAX_DECISION_WORK, `${unboundedWork}`);

  const all = paths(300);
  let worstWork = 0;
  const bounded: number[] = [];
  const unbounded: number[] = [];
  all.forEach((path, k) => {
    const before = engine.patternWork;
    let allowed = true;
    bounded.push(cpuMs(() => {
      allowed = engine.allows(ATTACKER, path, 'read');
    }));
    assert.equal(allowed, false);
    worstWork = Math.max(worstWork, engine.patternWork - before);
    // The reference, interleaved: the same 100 patterns on the same path, all of them run
    // (the same re2js entry point as the engine). Every tenth path keeps the test short.
    if (k % 10 === 0) unbounded.push(cpuMs(() => compiled.forEach((re) => re.matcher(path).matches())));
  });
  assert.ok(worstWork > 0 && worstWork <= MAX_DECISION_WORK, `worst decision: ${worstWork} units`);
  const ratio = median(bounded) / median(unbounded);
  assert.ok(ratio < 0.25, `a decision costs ${(ratio * 100).toFixed(0)}% of running every pattern (median ${median(bounded).toFixed(1)} ms vs ${median(unbounded).toFixed(1)} ms)`);
  // The ordinary policy is the cheapest and runs first: its paths are still allowed.
  assert.equal(engine.allows(ATTACKER, 'secrets/team-a/db/password', 'read'), true);
  assert.equal(engine.allows(ATTACKER, `secrets/team-a/db/${'x'.repeat(400)}`, 'read'), true);
});

test('FI-13: a decision never runs a path pattern whose literal prefix the path lacks (no work at all)', () => {
  const engine = new PolicyEngine();
  engine.load([pol('p', ATTACKER, '^tenants/.*a.{100}', ['read'])], 1);
  const before = engine.patternWork;
  assert.equal(engine.allows(ATTACKER, 'other/'.repeat(80), 'read'), false);
  assert.equal(engine.patternWork, before);
  assert.equal(engine.allows(ATTACKER, `tenants/${'a'.repeat(300)}`, 'read'), true);
  assert.ok(engine.patternWork > before);
});

test('FI-13: a policy write whose identity pattern is costly clears the caller cache instead of running the pattern over every cached caller', () => {
  const callers = Array.from({ length: 2000 }, (_, i) => `spiffe://t/ns/team-${i}/sa/worker-${i}`);
  const fill = (): CallerCache<string> => {
    const cache = new CallerCache<string>(4096);
    for (const c of callers) cache.set(c, [c]);
    return cache;
  };
  let runs = 0;
  const matcher = (cost: number): Parameters<CallerCache<string>['forgetMatching']>[0] => ({
    literal: null, prefix: 'spiffe://t/ns/team-1', cost: () => cost,
    matches: (s: string) => {
      runs++;
      return s.endsWith('-1');
    },
  });
  // Cheap: run over the callers with the prefix only; exactly the matching one is forgotten.
  const cheap = fill();
  cheap.forgetMatching(matcher(1));
  const prefixed = callers.filter((c) => c.startsWith('spiffe://t/ns/team-1')).length;
  assert.equal(runs, prefixed);
  assert.equal(cheap.get('spiffe://t/ns/team-1/sa/worker-1'), undefined);
  assert.deepEqual(cheap.get('spiffe://t/ns/team-10/sa/worker-10'), ['spiffe://t/ns/team-10/sa/worker-10']);
  // Near the program bound: not run at all; everything is forgotten (always correct for a cache).
  runs = 0;
  const costly = fill();
  costly.forgetMatching(matcher(MAX_PATTERN_PROGRAM));
  assert.equal(runs, 0);
  assert.equal(costly.get('spiffe://t/ns/team-10/sa/worker-10'), undefined);
  assert.equal(costly.get(callers[0]!), undefined);
});
