/**
 * FI-13 over the real router, guards, policy engine and memory store: a caller holding costly
 * path patterns sends GETs and listings at once. Its pattern work is spread over turns of the
 * event loop (one decision bound per turn: policy/pacer.ts), and a listing that must make a
 * path's `list` and `read` decisions in different turns still shows exactly what the caller
 * may list or read, as one unpaced decision per path would.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { stormPaths, stormPatterns } from '../../../test/helpers/redos-storm.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { SpiffeId } from '../../spiffe/index.js';
import { PATTERN_WORK_PER_TURN } from '../policy/pacer.js';
import { policyRoutes } from './policies.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const STORM = 'spiffe://spike.ist/workload/storm';
const SG = '/v1/store/secrets?action=get';
const SL = '/v1/store/secrets?action=list';

/** A storm path made a valid secret path of the same length (no empty segment, no slash at either end). */
const secretPath = (p: string): string => p.replace(/\/\//g, '/a').replace(/^\//, 'a').replace(/\/Z$/, 'aZ');

let h: RouteHarness;
const listed = stormPaths(12, 300).map((p, i) => `lst/${secretPath(p)}${i}`);
const readable = listed[7]!;

before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes], env: { SPIKE_NEXUS_LIST_POLICY_BUDGET: '10m' } });
  for (const path of listed) assert.equal((await h.post('/v1/store/secrets', { path, values: { v: 'x' } }, PILOT)).status, 200);
  const id = `^${STORM.replace(/\./g, '\\.')}$`;
  for (const [i, pathPattern] of stormPatterns(12).entries()) {
    const r = await h.post('/v1/acl/policy', { name: `storm-${i}`, spiffeidPattern: id, pathPattern, permissions: ['list'] }, PILOT);
    assert.equal(r.status, 200, r.body);
  }
  // `read` on one listed path, by a literal pattern: the listing's `read` decision allows it.
  assert.equal((await h.post('/v1/acl/policy', { name: 'one', spiffeidPattern: id, pathPattern: readable, permissions: ['read'] }, PILOT)).status, 200);
});
after(async () => {
  await h.close();
});

test('FI-13 route level: costly GETs and listings at once never do more than one decision bound of pattern work per turn; listings show exactly what one unpaced decision per path shows', async () => {
  const engine = h.ctx.engine;
  // Pattern work per turn of the loop, read by an immediate that re-arms itself.
  let worst = 0;
  let last = engine.patternWork;
  let live = true;
  const tick = (): void => {
    worst = Math.max(worst, engine.patternWork - last);
    last = engine.patternWork;
    if (live) setImmediate(tick);
  };
  setImmediate(tick);
  const start = engine.patternWork;
  try {
    const gets = stormPaths(6, 500).map((p) => h.post(SG, { path: secretPath(p) }, STORM));
    const lists = Array.from({ length: 4 }, () => h.post(SL, { prefix: 'lst/' }, STORM));
    for (const r of await Promise.all(gets)) assert.equal(r.status, 401);
    const pages = await Promise.all(lists);
    live = false;
    // What the caller may list or read, decided unpaced (both decisions at once, per path).
    const peer = SpiffeId.parse(STORM);
    const visible = listed.filter((p) => h.ctx.authz.canSeeSecretPath(peer, p)).sort();
    assert.ok(visible.includes(readable) && visible.length < listed.length, `${visible.length} visible`);
    for (const r of pages) {
      assert.equal(r.status, 200, r.body);
      assert.deepEqual((r.json as { keys: string[] }).keys, visible);
    }
  } finally {
    live = false;
  }
  const total = engine.patternWork - start;
  assert.ok(total > 10 * PATTERN_WORK_PER_TURN, `the requests were costly (${total} units), so the bound below meant something`);
  assert.ok(worst <= PATTERN_WORK_PER_TURN, `worst turn ${worst} units > ${PATTERN_WORK_PER_TURN}`);
});
