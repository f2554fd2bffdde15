/**
 * Policy routes over the real router, guards, policy engine and memory store (in-process
 * HTTP). Over real mTLS and SQLite: test/e2e/policies-*.test.ts.
 */
import { describeStall, stallCheck } from '../../../test/helpers/stall.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { policyRoutes } from './policies.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const ADMIN = 'spiffe://example.org/admin';
const APP = 'spiffe://spike.ist/workload/app';
const P = '/v1/acl/policy';
const PG = '/v1/acl/policy?action=get';
const PL = '/v1/acl/policy?action=list';
const PD = '/v1/acl/policy?action=delete';

let h: RouteHarness;
before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes] });
});
after(async () => {
  await h.close();
});

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

test('create, read (spiffiedPattern, empty id), list; update keeps createdAt', async () => {
  const spec = { name: 'db-read', spiffeidPattern: '^spiffe://example\\.org/app/db$', pathPattern: '^tenants/demo/db/.*$', permissions: ['read'] };
  const c = await h.post(P, spec, PILOT);
  assert.equal(c.status, 200);
  assert.equal(c.body, '{}');
  const g = await h.post(PG, { id: 'db-read' }, PILOT);
  assert.equal(g.status, 200);
  const j = g.json as Record<string, unknown>;
  assert.deepEqual(Object.keys(j), ['id', 'name', 'spiffiedPattern', 'pathPattern', 'permissions', 'createdAt', 'updatedAt']);
  assert.equal(j['id'], '');
  assert.equal(j['spiffiedPattern'], spec.spiffeidPattern);
  assert.deepEqual(j['permissions'], ['read']);
  assert.match(String(j['createdAt']), RFC3339);
  await new Promise((r) => setTimeout(r, 15));
  assert.equal((await h.post(P, { ...spec, permissions: ['read', 'list'] }, PILOT)).status, 200);
  const j2 = (await h.post(PG, { id: 'db-read' }, PILOT)).json as Record<string, unknown>;
  assert.equal(j2['createdAt'], j['createdAt']);
  assert.notEqual(j2['updatedAt'], j['updatedAt']);
  assert.deepEqual(j2['permissions'], ['read', 'list']);
  const l = await h.post(PL, { spiffeidPattern: '', pathPattern: '' }, PILOT);
  assert.equal(l.status, 200);
  assert.ok((l.json as { policies: Array<{ id: string; name: string }> }).policies.some((p) => p.id === '' && p.name === 'db-read'));
});

test('B1 fixed: get and delete of a missing policy → 404 (SPIKE answers 500)', async () => {
  const g = await h.post(PG, { id: 'no-such-policy' }, PILOT);
  assert.equal(g.status, 404);
  assert.equal(
    g.body,
    '{"id":"","name":"","spiffiedPattern":"","pathPattern":"","permissions":null,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z","err":"api_not_found"}',
  );
  const d = await h.post(PD, { id: 'no-such-policy' }, PILOT);
  assert.equal(d.status, 404);
  assert.equal(d.body, '{"err":"api_not_found"}');
});

test('list filters are exact string equality; spiffeidPattern wins over pathPattern', async () => {
  await h.post(P, { name: 'f1', spiffeidPattern: '^spiffe://f\\.org/a$', pathPattern: '^f/.*$', permissions: ['read'] }, PILOT);
  await h.post(P, { name: 'f2', spiffeidPattern: '^spiffe://f\\.org/b$', pathPattern: '^f/.*$', permissions: ['read'] }, PILOT);
  const names = async (body: object): Promise<string[]> =>
    ((await h.post(PL, body, PILOT)).json as { policies: Array<{ name: string }> }).policies.map((p) => p.name).sort();
  assert.deepEqual(await names({ spiffeidPattern: '^spiffe://f\\.org/a$' }), ['f1']);
  assert.deepEqual(await names({ pathPattern: '^f/.*$' }), ['f1', 'f2']);
  assert.deepEqual(await names({ spiffeidPattern: '^spiffe://f\\.org/b$', pathPattern: 'ignored' }), ['f2']);
  // POL-13: a filter is never compiled as a regex
  assert.deepEqual(await names({ pathPattern: '.*' }), []);
  const empty = await h.post(PL, { spiffeidPattern: 'spiffe://nothing' }, PILOT);
  assert.equal(empty.body, '{"policies":[]}');
});

test('POL-14 / POL-15 / D3: bad names, permissions, patterns → 400 (never 500), nothing stored', async () => {
  const base = { name: 'bad', spiffeidPattern: '^spiffe://spike\\.ist/x$', pathPattern: '^a/.*$', permissions: ['read'] };
  const bad: object[] = [
    { ...base, permissions: [] },
    { ...base, permissions: ['admin'] },
    { ...base, permissions: ['READ'] },
    { ...base, permissions: 'read' },
    { ...base, name: '' },
    { ...base, name: '../x' },
    { ...base, name: 'admin\u0000' },
    { ...base, name: 'x'.repeat(251) },
    { ...base, spiffeidPattern: '.*' },
    { ...base, spiffeidPattern: '^spiffe://a|b$' },
    { ...base, pathPattern: '(a)\\1' }, // backreference: RE2 cannot compile (SPIKE: 500)
    { ...base, pathPattern: '(?=x)' },
    { ...base, pathPattern: '*' },
    { ...base, pathPattern: 'a\nb' },
  ];
  for (const b of bad) {
    const r = await h.post(P, b, PILOT);
    assert.equal(r.status, 400, JSON.stringify(b));
    assert.equal((r.json as { err: string }).err, 'api_bad_request');
  }
  assert.equal((await h.post(PG, { id: 'bad' }, PILOT)).status, 404);
  // duplicates are accepted (SPIKE) and collapsed
  assert.equal((await h.post(P, { ...base, name: 'dups', permissions: ['read', 'read'] }, PILOT)).status, 200);
  assert.deepEqual(((await h.post(PG, { id: 'dups' }, PILOT)).json as { permissions: string[] }).permissions, ['read']);
  // POL-15: 'admin ' and 'admin' are distinct
  await h.post(P, { ...base, name: 'admin', pathPattern: '^one$' }, PILOT);
  await h.post(P, { ...base, name: 'admin ', pathPattern: '^two$' }, PILOT);
  assert.equal(((await h.post(PG, { id: 'admin' }, PILOT)).json as { pathPattern: string }).pathPattern, '^one$');
  assert.equal(((await h.post(PG, { id: 'admin ' }, PILOT)).json as { pathPattern: string }).pathPattern, '^two$');
});

test('POL-17: a policy change is visible to the very next request (grant, narrow, delete)', async () => {
  const put = { path: 'tenants/p17/x', values: { k: 'v' } };
  assert.equal((await h.post('/v1/store/secrets', put, PILOT)).status, 200);
  const get = (): Promise<number> => h.post('/v1/store/secrets?action=get', { path: 'tenants/p17/x' }, APP).then((r) => r.status);
  assert.equal(await get(), 401);
  await h.post(P, { name: 'p17', spiffeidPattern: '^spiffe://spike\\.ist/workload/app$', pathPattern: '^tenants/p17/.*$', permissions: ['read'] }, PILOT);
  assert.equal(await get(), 200);
  await h.post(P, { name: 'p17', spiffeidPattern: '^spiffe://spike\\.ist/workload/app$', pathPattern: '^tenants/other/.*$', permissions: ['read'] }, PILOT);
  assert.equal(await get(), 401, 'narrowed');
  await h.post(P, { name: 'p17', spiffeidPattern: '^spiffe://spike\\.ist/workload/app$', pathPattern: '^tenants/p17/.*$', permissions: ['read'] }, PILOT);
  assert.equal(await get(), 200);
  // 100 requests in flight while the delete happens: none that starts after its 200 succeeds
  const inflight = Array.from({ length: 100 }, () => get());
  assert.equal((await h.post(PD, { id: 'p17' }, PILOT)).status, 200);
  const after = await Promise.all(Array.from({ length: 20 }, () => get()));
  assert.ok(after.every((s) => s === 401));
  await Promise.all(inflight);
});

test('POL-02: path patterns acl/system/spike/secret/exec with write reach no gate', async () => {
  const id = 'spiffe://spike.ist/workload/substr';
  for (const pat of ['acl', 'system', 'spike', 'secret', 'exec']) {
    await h.post(P, { name: `sub-${pat}`, spiffeidPattern: '^spiffe://spike\\.ist/workload/substr$', pathPattern: pat, permissions: ['write', 'read', 'list'] }, PILOT);
  }
  assert.equal((await h.post(P, { name: 'evil', spiffeidPattern: '^spiffe://spike\\.ist/workload/substr$', pathPattern: '.*', permissions: ['super'] }, id)).status, 401);
  assert.equal((await h.post(PL, {}, id)).status, 401);
  assert.equal((await h.post(PG, { id: 'sub-acl' }, id)).status, 401);
  assert.equal((await h.post(PD, { id: 'sub-acl' }, id)).status, 401);
  // …but each covers the secret of that literal name
  assert.equal((await h.post('/v1/store/secrets', { path: 'acl', values: { k: 'v' } }, id)).status, 200);
  assert.equal((await h.post('/v1/store/secrets', { path: 'xacl', values: { k: 'v' } }, id)).status, 401);
});

test('POL-03 / POL-04: full-match anchoring of identity and path patterns for policy admin', async () => {
  await h.post(P, { name: 'acl-admin', spiffeidPattern: 'spiffe://example\\.org/admin', pathPattern: '^spike/system/acl$', permissions: ['write', 'read', 'list'] }, PILOT);
  assert.equal((await h.post(PL, {}, ADMIN)).status, 200);
  assert.equal((await h.post(PL, {}, 'spiffe://example.org/admin-attacker')).status, 401);
  assert.equal((await h.post(PL, {}, 'spiffe://example.org/admin/x')).status, 401);
  // admin can manage policies, including creating one for itself
  assert.equal((await h.post(P, { name: 'by-admin', spiffeidPattern: '^spiffe://example\\.org/app$', pathPattern: '^x$', permissions: ['read'] }, ADMIN)).status, 200);
  // POL-04: `|` in an identity pattern is outside SPIKE's grammar (400); in a path pattern it
  // is evaluated as ^(?:…)$ — exactly `spike/system/acl` or `x`.
  assert.equal((await h.post(P, { name: 'alt', spiffeidPattern: '^spiffe://td/admin|zzz$', pathPattern: '^x$', permissions: ['list'] }, PILOT)).status, 400);
  await h.post(P, { name: 'alt', spiffeidPattern: '^spiffe://td/admin$', pathPattern: '^spike/system/acl|x$', permissions: ['list', 'read'] }, PILOT);
  assert.equal((await h.post(PL, {}, 'spiffe://td/admin')).status, 200);
  assert.equal((await h.post(PL, {}, 'spiffe://td/admin-x')).status, 401);
  await h.post('/v1/store/secrets', { path: 'x', values: { k: 'v' } }, PILOT);
  await h.post('/v1/store/secrets', { path: 'spike/system/acl/x', values: { k: 'v' } }, PILOT); // reserved: 400
  assert.equal((await h.post('/v1/store/secrets?action=get', { path: 'x' }, 'spiffe://td/admin')).status, 200);
  assert.equal((await h.post('/v1/store/secrets?action=get', { path: 'xx' }, 'spiffe://td/admin')).status, 401);
  assert.equal((await h.post('/v1/store/secrets?action=get', { path: 'acl|x' }, 'spiffe://td/admin')).status, 401);
});

// A backtracking engine would stall for seconds to forever on these paths; the check fails only
// on such a stall, never on scheduler noise of a loaded machine (test/helpers/stall.ts).
test('POL-05: ReDoS patterns are accepted and evaluated in linear time; the event loop never stalls', async () => {
  const id = 'spiffe://spike.ist/workload/redos';
  for (const [i, pat] of ['^(a+)+$', '(a|a)*b', '(.*a){20}'].entries()) {
    const r = await h.post(P, { name: `redos-${i}`, spiffeidPattern: '^spiffe://spike\\.ist/workload/redos$', pathPattern: pat, permissions: ['read'] }, PILOT);
    assert.equal(r.status, 200, pat);
  }
  const stall = await stallCheck(async () => {
    // `!` is outside the path alphabet (400 before any evaluation); `-` keeps the path valid and
    // makes every pattern fail at the very end — the worst case for a backtracking engine.
    assert.equal((await h.post('/v1/store/secrets?action=get', { path: 'a'.repeat(28) + '!' }, id)).status, 400);
    for (const p of ['a'.repeat(28) + '-', 'a'.repeat(400) + '-', 'a'.repeat(480)]) {
      const r = await h.post('/v1/store/secrets?action=get', { path: p }, id);
      assert.ok(r.status === 401 || r.status === 404, String(r.status));
    }
  });
  assert.ok(stall.ok, describeStall(stall));
});

test('P4: policy routes deny workloads without gate grants, and lite; error shapes per route', async () => {
  for (const who of [APP, 'spiffe://spike.ist/spike/workload/role/lite', 'spiffe://spike.ist/spike/pilot/role/superuser-x', 'spiffe://spike.ist/spike/pilot/role/recover']) {
    const put = await h.post(P, { name: 'x', spiffeidPattern: '^spiffe://a$', pathPattern: '^a$', permissions: ['read'] }, who);
    assert.equal(put.status, 401, who);
    assert.equal(put.body, '{"err":"access_unauthorized"}');
    const g = await h.post(PG, { id: 'db-read' }, who);
    assert.equal(g.status, 401);
    assert.match(g.body, /"permissions":null,.*"err":"access_unauthorized"\}$/);
    const l = await h.post(PL, {}, who);
    assert.equal(l.body, '{"policies":null,"err":"access_unauthorized"}');
    assert.equal((await h.post(PD, { id: 'db-read' }, who)).status, 401);
  }
  assert.equal((await h.post(PG, { id: 'db-read' }, PILOT)).status, 200, 'nothing was deleted');
});
