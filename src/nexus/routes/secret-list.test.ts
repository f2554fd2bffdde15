/**
 * The list route's additive fields (prefix, limit, after → next) through the real router:
 * SPIKE's `{}` answers as before, pages chain through `next`, a workload's pages are
 * filtered before `limit` counts and `next` never names a path it may not see, bad fields
 * answer 400 and change nothing, and nothing about a path reaches the log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { policyRoutes } from './policies.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const LISTER = 'spiffe://spike.ist/workload/lister';
const S = '/v1/store/secrets';
const SL = '/v1/store/secrets?action=list';

let h: RouteHarness;
const list = async (body: unknown, peer = PILOT): Promise<{ keys: string[]; next?: string }> => {
  const r = await h.post(SL, body, peer);
  assert.equal(r.status, 200, r.body);
  return r.json as { keys: string[]; next?: string };
};

before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes] });
  const r = await h.post('/v1/acl/policy', { name: 'lister', spiffeidPattern: '^spiffe://spike\\.ist/workload/lister$', pathPattern: '^team/(a|c)/.*$', permissions: ['list'] }, PILOT);
  assert.equal(r.status, 200, r.body);
  for (const t of ['a', 'b', 'c']) {
    for (let i = 0; i < 5; i++) assert.equal((await h.post(S, { path: `team/${t}/s${i}`, values: { k: 'v' } }, PILOT)).status, 200);
  }
  await h.post(S, { path: 'teamx/one', values: { k: 'v' } }, PILOT);
});
after(async () => {
  await h.close();
});

test('list: SPIKE\'s {} answers every key, no `next` member (wire unchanged)', async () => {
  const r = await h.post(SL, {}, PILOT);
  assert.equal(r.status, 200);
  assert.ok(!r.body.includes('"next"'));
  assert.equal((r.json as { keys: string[] }).keys.length, 16);
});

test('list: prefix is a plain prefix; limit + after page through it; `next` only when more follow', async () => {
  assert.deepEqual((await list({ prefix: 'team/b/' })).keys, ['team/b/s0', 'team/b/s1', 'team/b/s2', 'team/b/s3', 'team/b/s4']);
  assert.deepEqual((await list({ prefix: 'team' })).keys.length, 16);
  const p1 = await list({ prefix: 'team/b/', limit: 2 });
  assert.deepEqual(p1, { keys: ['team/b/s0', 'team/b/s1'], next: 'team/b/s1' });
  const p2 = await list({ prefix: 'team/b/', limit: 2, after: p1.next });
  assert.deepEqual(p2, { keys: ['team/b/s2', 'team/b/s3'], next: 'team/b/s3' });
  const p3 = await list({ prefix: 'team/b/', limit: 2, after: p2.next });
  assert.deepEqual(p3, { keys: ['team/b/s4'] });
  assert.deepEqual(await list({ prefix: 'team/b/', limit: 5 }), { keys: ['team/b/s0', 'team/b/s1', 'team/b/s2', 'team/b/s3', 'team/b/s4'] });
  assert.deepEqual(await list({ prefix: 'nothing/' }), { keys: [] });
});

test('list: a workload\'s pages hold only visible paths, `limit` counts after filtering, `next` is a visible path', async () => {
  assert.deepEqual((await list({}, LISTER)).keys, [0, 1, 2, 3, 4].map((i) => `team/a/s${i}`).concat([0, 1, 2, 3, 4].map((i) => `team/c/s${i}`)));
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await list({ prefix: 'team/', limit: 3, ...(after ? { after } : {}) }, LISTER);
    assert.ok(page.keys.length <= 3);
    for (const k of page.keys) assert.ok(k.startsWith('team/a/') || k.startsWith('team/c/'));
    seen.push(...page.keys);
    if (page.next === undefined) break;
    assert.ok(page.next.startsWith('team/a/') || page.next.startsWith('team/c/'), 'the cursor never names a hidden path');
    after = page.next;
  }
  assert.equal(seen.length, 10);
  // the page ending on team/a/s4 must not hand out a team/b cursor, though team/b paths follow
  const edge = await list({ prefix: 'team/', limit: 5 }, LISTER);
  assert.deepEqual(edge.next, 'team/a/s4');
  assert.deepEqual((await list({ prefix: 'team/b/' }, LISTER)).keys, []);
});

test('list: bad additive fields → 400 with the list error shape; the path and prefix are not logged', async () => {
  for (const body of [{ limit: 0 }, { limit: -1 }, { limit: 1.5 }, { limit: 10_001 }, { limit: '5' }, { prefix: 7 }, { prefix: 'x'.repeat(501) }, { after: null }, { Limit: 3 }]) {
    const r = await h.post(SL, body, PILOT);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.deepEqual((r.json as { keys: unknown }).keys, null);
    assert.equal((r.json as { err: string }).err, 'api_bad_request');
  }
  await list({ prefix: 'log-canary-prefix-9d1', after: 'log-canary-after-9d1', limit: 1 });
  assert.ok(!h.logs().includes('log-canary'));
  assert.ok(!h.logs().includes('team/b/s'));
});
