/**
 * Secret routes over the real router, guards, policy engine and memory store (in-process HTTP;
 * the same routes over real mTLS and SQLite are exercised in test/e2e/secrets-*.test.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../store/memory.js';
import { LiteStore } from '../../store/lite.js';
import { StoreError, type SecretPathQuery, type StoreErrorCode } from '../../store/types.js';
import { policyRoutes } from './policies.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const READER = 'spiffe://spike.ist/workload/reader';
const WRITER = 'spiffe://spike.ist/workload/writer';
const LISTER = 'spiffe://spike.ist/workload/lister';
const NOBODY = 'spiffe://spike.ist/workload/nobody';
const LITE = 'spiffe://spike.ist/spike/workload/role/lite';

const S = '/v1/store/secrets';
const SG = '/v1/store/secrets?action=get';
const SD = '/v1/store/secrets?action=delete';
const SU = '/v1/store/secrets?action=undelete';
const SX = '/v1/store/secrets?action=destroy';
const SL = '/v1/store/secrets?action=list';
const SM = '/v1/store/secrets/metadata?action=get';

let h: RouteHarness;

before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes] });
  const pol = async (name: string, id: string, path: string, perms: string[]): Promise<void> => {
    const r = await h.post('/v1/acl/policy', { name, spiffeidPattern: id, pathPattern: path, permissions: perms }, PILOT);
    assert.equal(r.status, 200, r.body);
  };
  await pol('reader', `^${READER.replace(/\./g, '\\.')}$`, '^tenants/a/.*$', ['read']);
  await pol('writer', `^${WRITER.replace(/\./g, '\\.')}$`, '^tenants/a/.*$', ['write']);
  await pol('lister', `^${LISTER.replace(/\./g, '\\.')}$`, '^tenants/b/.*$', ['list']);
});
after(async () => {
  await h.close();
});

test('put then get answers SPIKE\'s exact bytes and headers', async () => {
  const put = await h.post(S, { path: 'tenants/demo/db/creds', values: { username: 'SPIKE', password: 'SPIKE_Rocks' } }, PILOT);
  assert.equal(put.status, 200);
  assert.equal(put.body, '{"version":1}'); // SPIKE answers {}; `version` is additive (SPIKE clients ignore it)
  const get = await h.post(SG, { path: 'tenants/demo/db/creds' }, PILOT);
  assert.equal(get.status, 200);
  assert.equal(get.body, '{"data":{"password":"SPIKE_Rocks","username":"SPIKE"}}');
  assert.equal(get.headers['content-type'], 'application/json');
  assert.equal(get.headers['cache-control'], 'no-store, no-cache, must-revalidate, private');
});

test('SEC-12 (spec §5.1 wins): an empty values map is accepted as SPIKE accepts it, and reads back as {}', async () => {
  // The catalogue asks for 400; the spec (api.md §5.1: "Empty `values` map is accepted"), which
  // outranks the catalogue, keeps SPIKE's answer so SPIKE clients that write {} keep working.
  const put = await h.post(S, { path: 'tenants/empty/values', values: {} }, PILOT);
  assert.equal(put.status, 200, put.body);
  const get = await h.post(SG, { path: 'tenants/empty/values' }, PILOT);
  assert.equal(get.status, 200);
  assert.equal(get.body, '{"data":{}}');
  const missing = await h.post(S, { path: 'tenants/empty/missing' }, PILOT);
  assert.equal(missing.status, 400, 'values itself is still required');
});

test('SEC-16: a deleted version answers 404 with the get error shape', async () => {
  const p = 'tenants/demo/del/x';
  await h.post(S, { path: p, values: { k: '1' } }, PILOT);
  await h.post(S, { path: p, values: { k: '2' } }, PILOT);
  const d = await h.post(SD, { path: p, versions: [0, 1] }, PILOT);
  assert.equal(d.status, 200);
  assert.equal(d.body, '{}');
  const g1 = await h.post(SG, { path: p, version: 1 }, PILOT);
  assert.equal(g1.status, 404);
  assert.equal(g1.body, '{"data":null,"err":"api_not_found"}');
  const g0 = await h.post(SG, { path: p }, PILOT);
  assert.equal(g0.status, 404, 'current version 0 (all deleted) → 404');
  // B19 fixed: undelete without versions restores the highest deleted version.
  const u = await h.post(SU, { path: p }, PILOT);
  assert.equal(u.status, 200);
  assert.deepEqual((await h.post(SG, { path: p }, PILOT)).json, { data: { k: '2' } });
  // nothing left to undelete → 404
  const u2 = await h.post(SU, { path: p, versions: [2] }, PILOT);
  assert.equal(u2.status, 404);
  assert.equal(u2.body, '{"err":"api_not_found"}');
  // unknown path: delete/undelete/destroy/get/metadata → 404
  for (const route of [SD, SU, SX, SG, SM]) {
    const r = await h.post(route, { path: 'tenants/demo/never' }, PILOT);
    assert.equal(r.status, 404, route);
  }
});

test('SEC-15 / B2: max versions 10, 25 puts → 16..25 kept, 1..15 are really gone, oldest = 16', async () => {
  const p = 'tenants/demo/prune';
  for (let i = 1; i <= 25; i++) {
    const r = await h.post(S, { path: p, values: { v: String(i) } }, PILOT);
    assert.equal(r.status, 200);
  }
  for (let i = 1; i <= 25; i++) {
    const r = await h.post(SG, { path: p, version: i }, PILOT);
    if (i <= 15) assert.equal(r.status, 404, `v${i}`);
    else assert.deepEqual(r.json, { data: { v: String(i) } });
  }
  const m = await h.post(SM, { path: p }, PILOT);
  assert.equal(m.status, 200);
  const meta = m.json as { versions: Record<string, { version: number }>; metadata: Record<string, unknown> };
  assert.equal(meta.metadata['oldestVersion'], 16);
  assert.equal(meta.metadata['currentVersion'], 25);
  assert.equal(meta.metadata['maxVersions'], 10);
  assert.deepEqual(Object.keys(meta.versions).map(Number).sort((a, b) => a - b), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
});

test('B3: metadata is keyed by real version numbers, Go key order, times RFC 3339, deletedTime null/set', async () => {
  const p = 'tenants/demo/meta';
  for (let i = 1; i <= 10; i++) await h.post(S, { path: p, values: { v: String(i) }, maxVersions: 10 }, PILOT);
  await h.post(SD, { path: p, versions: [3] }, PILOT);
  const m = await h.post(SM, { path: p }, PILOT);
  assert.equal(m.status, 200);
  // Go sorts map keys as strings: "1" < "10" < "11" < "2" …
  const keys = [...m.body.matchAll(/"(\d+)":\{"createdTime"/g)].map((x) => x[1]);
  assert.deepEqual(keys, ['1', '10', '2', '3', '4', '5', '6', '7', '8', '9']);
  const j = m.json as { versions: Record<string, { createdTime: string; version: number; deletedTime: string | null }>; metadata: Record<string, unknown> };
  for (const [k, v] of Object.entries(j.versions)) assert.equal(String(v.version), k);
  assert.equal(j.versions['1']?.deletedTime, null);
  assert.match(j.versions['3']?.deletedTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  assert.deepEqual(Object.keys(j.metadata), ['currentVersion', 'oldestVersion', 'createdTime', 'updatedTime', 'maxVersions']);
  assert.equal(j.metadata['maxVersions'], 10);
  // metadata of a deleted version → 404 (same rules as get), of a live one → 200
  assert.equal((await h.post(SM, { path: p, version: 3 }, PILOT)).status, 404);
  assert.equal((await h.post(SM, { path: p, version: 2 }, PILOT)).status, 200);
  assert.equal((await h.post(SM, { path: p, version: 99 }, PILOT)).status, 404);
  const missing = await h.post(SM, { path: 'tenants/demo/nope' }, PILOT);
  assert.equal(
    missing.body,
    '{"metadata":{"currentVersion":0,"oldestVersion":0,"createdTime":"0001-01-01T00:00:00Z","updatedTime":"0001-01-01T00:00:00Z","maxVersions":0},"err":"api_not_found"}',
  );
});

test('maxVersions ceiling: a writer cannot keep more versions than SPIKE_NEXUS_MAX_SECRET_VERSIONS (clamped, not refused)', async () => {
  const hc = await startRouteHarness({ modules: [secretRoutes, policyRoutes], env: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '3' } });
  try {
    const p = 'tenants/a/ceiling';
    for (let i = 1; i <= 6; i++) {
      const r = await hc.post(S, { path: p, values: { v: String(i) }, maxVersions: 1000 }, PILOT);
      assert.equal(r.status, 200, r.body);
    }
    const j = (await hc.post(SM, { path: p }, PILOT)).json as { versions: Record<string, unknown>; metadata: Record<string, unknown> };
    assert.equal(j.metadata['maxVersions'], 3);
    assert.deepEqual(Object.keys(j.versions).sort(), ['4', '5', '6']);
    assert.equal((await hc.post(SG, { path: p, version: 3 }, PILOT)).status, 404, 'pruned version is gone');
    // Lower than the ceiling: kept as asked.
    await hc.post(S, { path: p, values: { v: '7' }, maxVersions: 2 }, PILOT);
    assert.equal(((await hc.post(SM, { path: p }, PILOT)).json as { metadata: Record<string, unknown> }).metadata['maxVersions'], 2);
    assert.match(hc.logs(), /maxVersions clamped to the operator ceiling/);
    assert.doesNotMatch(hc.logs(), /tenants\/a\/ceiling/);
  } finally {
    await hc.close();
  }
});

test('additive customMetadata is stored, returned in metadata, and never needed by SPIKE clients', async () => {
  const p = 'tenants/demo/custom';
  await h.post(S, { path: p, values: { a: 'b' }, customMetadata: { owner: 'team-x' } }, PILOT);
  const j = (await h.post(SM, { path: p }, PILOT)).json as { metadata: { customMetadata?: Record<string, string> } };
  assert.deepEqual(j.metadata.customMetadata, { owner: 'team-x' });
});

test('SEC-13 (route level): 50 parallel puts → 50 distinct versions each reading back its value; 50 with cas=N → one 200, 49 × 409', async (t) => {
  // Keeping all 50 versions needs an operator ceiling of at least 50 (SPIKE_NEXUS_MAX_SECRET_VERSIONS).
  const hc = await startRouteHarness({ modules: [secretRoutes], env: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '200' } });
  t.after(() => hc.close());
  const p = 'tenants/demo/race';
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => hc.post(S, { path: p, values: { i: String(i) }, maxVersions: 200 }, PILOT)));
  assert.ok(rs.every((r) => r.status === 200));
  const seen = new Set<string>();
  for (let v = 1; v <= 50; v++) {
    const r = await hc.post(SG, { path: p, version: v }, PILOT);
    assert.equal(r.status, 200);
    seen.add((r.json as { data: { i: string } }).data.i);
  }
  assert.equal(seen.size, 50);
  const cas = await Promise.all(Array.from({ length: 50 }, (_, i) => hc.post(S, { path: p, values: { c: String(i) }, cas: 50 }, PILOT)));
  assert.equal(cas.filter((r) => r.status === 200).length, 1);
  const conflicts = cas.filter((r) => r.status === 409);
  assert.equal(conflicts.length, 49);
  assert.equal((conflicts[0]?.json as { err: string }).err, 'api_conflict');
  // cas 0 = must not exist
  assert.equal((await hc.post(S, { path: p, values: { x: 'y' }, cas: 0 }, PILOT)).status, 409);
  assert.equal((await hc.post(S, { path: 'tenants/demo/race-new', values: { x: 'y' }, cas: 0 }, PILOT)).status, 200);
});

test('destroy (additive) wipes a version for good: get 404, gone from metadata, never undeletable', async () => {
  const p = 'tenants/demo/destroy';
  await h.post(S, { path: p, values: { v: '1' } }, PILOT);
  await h.post(S, { path: p, values: { v: '2' } }, PILOT);
  const d = await h.post(SX, { path: p, versions: [1] }, PILOT);
  assert.equal(d.status, 200);
  assert.equal((await h.post(SG, { path: p, version: 1 }, PILOT)).status, 404);
  assert.equal((await h.post(SU, { path: p, versions: [1] }, PILOT)).status, 404);
  const j = (await h.post(SM, { path: p }, PILOT)).json as { versions: Record<string, unknown> };
  assert.deepEqual(Object.keys(j.versions), ['2']);
  // without permission: 401 whether or not the path exists (D10)
  assert.equal((await h.post(SX, { path: p }, NOBODY)).status, 401);
});

test('SEC-06: prototype names round-trip exactly as keys and values; no pollution', async () => {
  const names = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];
  const body = `{"path":"tenants/demo/proto","values":{${names.map((n) => `"${n}":"${n}-v"`).join(',')}}}`;
  const r = await h.post(S, body, PILOT);
  assert.equal(r.status, 200, r.body);
  const g = await h.post(SG, { path: 'tenants/demo/proto' }, PILOT);
  assert.equal(g.body, `{"data":{${[...names].sort().map((n) => `"${n}":"${n}-v"`).join(',')}}}`);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.equal(typeof ({} as { toString: unknown }).toString, 'function');
});

test('SEC-05 / SEC-07 / SEC-08 / SEC-09 / SEC-11: wrong types, inherited path, duplicates, bad versions → 400 and nothing stored', async () => {
  const bad: string[] = [
    '{"path":"tenants/demo/t1","values":[]}',
    '{"path":"tenants/demo/t1","values":"x"}',
    '{"path":"tenants/demo/t1","values":null}',
    '{"path":"tenants/demo/t1","values":{"k":1}}',
    '{"path":"tenants/demo/t1","values":{"k":{}}}',
    '{"path":"tenants/demo/t1","values":{"k":true}}',
    '{"path":1,"values":{"k":"v"}}',
    '{"path":["a"],"values":{"k":"v"}}',
    '{"__proto__":{"path":"tenants/demo/t1"},"values":{"k":"v"}}',
    '{"path":"tenants/demo/t1","path":"tenants/demo/t2","values":{"k":"v"}}',
    '{"path":"tenants/demo/t1","values":{"":"v"}}',
    '{"path":"tenants/demo/t1","values":{"a\\nb":"v"}}',
    '{"path":"tenants/demo/t1","values":{"k":"v"},"cas":-1}',
    '{"path":"tenants/demo/t1","values":{"k":"v"},"maxVersions":0}',
  ];
  for (const b of bad) {
    const r = await h.post(S, b, PILOT);
    assert.equal(r.status, 400, b);
    assert.equal((r.json as { err: string }).err, 'api_bad_request');
  }
  for (const v of ['-1', '1.5', '"1"', '1e400', '9007199254740993', 'null']) {
    const r = await h.post(SG, `{"path":"tenants/demo/t1","version":${v}}`, PILOT);
    assert.equal(r.status, 400, v);
  }
  const list = (await h.post(SL, {}, PILOT)).json as { keys: string[] };
  assert.ok(!list.keys.includes('tenants/demo/t1') && !list.keys.includes('tenants/demo/t2'));
});

test('POL-09 / POL-10 / POL-11 / POL-18: dot segments, slashes, empty and reserved paths → 400 invalid path, never stored', async () => {
  for (const p of ['apps/a/../b', 'apps/./b', '..', '.', '/apps/a', 'apps/a/', 'apps//a', '', 'x'.repeat(501), 'spike/system/acl', 'spike/system']) {
    const r = await h.post(S, { path: p, values: { k: 'v' } }, PILOT);
    assert.equal(r.status, 400, JSON.stringify(p));
    assert.equal((r.json as { err: string }).err, 'api_bad_request');
  }
  const list = (await h.post(SL, {}, PILOT)).json as { keys: string[] };
  assert.ok(list.keys.every((k) => !k.startsWith('apps/') && !k.startsWith('spike/')));
});

test('SEC-10: more than 100 versions → 400; duplicates apply once', async () => {
  const p = 'tenants/demo/many';
  await h.post(S, { path: p, values: { v: '1' } }, PILOT);
  assert.equal((await h.post(SD, { path: p, versions: Array.from({ length: 101 }, () => 1) }, PILOT)).status, 400);
  assert.equal((await h.post(SD, { path: p, versions: [-1] }, PILOT)).status, 400);
  assert.equal((await h.post(SD, { path: p, versions: [1, 1, 1] }, PILOT)).status, 200);
  assert.equal((await h.post(SG, { path: p }, PILOT)).status, 404);
});

test('P4 / POL-01 / SEC-21: per-permission access; default deny with the route\'s error shape', async () => {
  await h.post(S, { path: 'tenants/a/x', values: { k: 'a' } }, PILOT);
  // reader: get + metadata on tenants/a, nothing else
  assert.equal((await h.post(SG, { path: 'tenants/a/x' }, READER)).status, 200);
  assert.equal((await h.post(SM, { path: 'tenants/a/x' }, READER)).status, 200);
  const rp = await h.post(S, { path: 'tenants/a/x', values: { k: 'r' } }, READER);
  assert.equal(rp.status, 401);
  assert.equal(rp.body, '{"err":"access_unauthorized"}');
  // writer: put/delete/undelete on tenants/a; no get, no metadata
  assert.equal((await h.post(S, { path: 'tenants/a/x', values: { k: 'w' } }, WRITER)).status, 200);
  const wg = await h.post(SG, { path: 'tenants/a/x' }, WRITER);
  assert.equal(wg.status, 401);
  assert.equal(wg.body, '{"data":null,"err":"access_unauthorized"}');
  const wm = await h.post(SM, { path: 'tenants/a/x' }, WRITER);
  assert.equal(wm.status, 401);
  assert.match(wm.body, /^\{"metadata":\{"currentVersion":0,.*"err":"access_unauthorized"\}$/);
  // nobody and lite: every route denied
  for (const who of [NOBODY, LITE]) {
    for (const [route, body] of [[S, { path: 'tenants/a/x', values: { k: 'v' } }], [SG, { path: 'tenants/a/x' }], [SD, { path: 'tenants/a/x' }], [SU, { path: 'tenants/a/x' }], [SX, { path: 'tenants/a/x' }], [SL, {}], [SM, { path: 'tenants/a/x' }]] as const) {
      const r = await h.post(route, body, who);
      assert.equal(r.status, 401, `${who} ${route}`);
    }
  }
  const l = await h.post(SL, {}, NOBODY);
  assert.equal(l.body, '{"keys":null,"err":"access_unauthorized"}');
  // the value was written by the writer, read by pilot
  assert.deepEqual((await h.post(SG, { path: 'tenants/a/x' }, PILOT)).json, { data: { k: 'w' } });
});

test('POL-20 / D10: unauthorised get of an existing and of a missing path answer identically', async () => {
  const a = await h.post(SG, { path: 'tenants/a/x' }, NOBODY);
  const b = await h.post(SG, { path: 'tenants/a/does-not-exist' }, NOBODY);
  assert.equal(a.status, b.status);
  assert.equal(a.body, b.body);
});

test('POL-21 / A5: list shows only paths the caller may list or read; Pilot sees all', async () => {
  for (const p of ['tenants/b/one', 'tenants/b/two', 'tenants/c/hidden', 'tenants/a/seen']) await h.post(S, { path: p, values: { k: 'v' } }, PILOT);
  const lister = (await h.post(SL, {}, LISTER)).json as { keys: string[] };
  assert.deepEqual(lister.keys, ['tenants/b/one', 'tenants/b/two']);
  // reader has read but no list anywhere → the list gate denies (SPIKE: list on spike/system/secret)
  assert.equal((await h.post(SL, {}, READER)).status, 401);
  const all = (await h.post(SL, {}, PILOT)).json as { keys: string[] };
  assert.ok(all.keys.includes('tenants/c/hidden') && all.keys.includes('tenants/b/one'));
  assert.deepEqual(all.keys, [...all.keys].sort());
});

test('POL-13: regex metacharacters in a secret path are stored literally and never widen a grant', async () => {
  const p = 'tenants/a/.*';
  assert.equal((await h.post(S, { path: p, values: { k: 'meta' } }, PILOT)).status, 200);
  assert.deepEqual((await h.post(SG, { path: p }, PILOT)).json, { data: { k: 'meta' } });
  // the reader's ^tenants/a/.*$ fully matches the literal string, as it should; a narrower one does not
  await h.post('/v1/acl/policy', { name: 'narrow', spiffeidPattern: '^spiffe://spike\\.ist/workload/narrow$', pathPattern: '^tenants/a/x$', permissions: ['read'] }, PILOT);
  assert.equal((await h.post(SG, { path: p }, 'spiffe://spike.ist/workload/narrow')).status, 401);
  assert.equal((await h.post(SG, { path: 'tenants/a/x' }, 'spiffe://spike.ist/workload/narrow')).status, 200);
});

test('SEC-19 / D16: logs never carry a secret path or value, even on errors', async () => {
  const path = 'tenants/a/log-canary-7c1e';
  const value = 'value-canary-c0ffee';
  await h.post(S, { path, values: { k: value } }, PILOT);
  await h.post(SG, { path }, PILOT);
  await h.post(SG, { path }, NOBODY);
  await h.post(S, `{"path":"${path}","values":{"k":1}}`, PILOT);
  await h.post(SM, { path, version: 77 }, PILOT);
  const logs = h.logs();
  assert.ok(logs.length > 0);
  assert.ok(!logs.includes('log-canary-7c1e'));
  assert.ok(!logs.includes('c0ffee'));
});

// ---- store error mapping (store-errors.ts), with a store that fails on demand

class FailingStore extends MemoryStore {
  failWith: StoreErrorCode | null = null;
  private maybeFail(): void {
    if (this.failWith !== null) throw new StoreError(this.failWith);
  }
  override async getSecret(path: string, version?: number) {
    this.maybeFail();
    return super.getSecret(path, version);
  }
  override async listSecretPathPage(q: SecretPathQuery) {
    this.maybeFail();
    return super.listSecretPathPage(q);
  }
}

test('store errors map to stable answers: integrity 500 (+ alarm without path), busy/locked/unavailable 503, unsupported 400', async () => {
  const store = new FailingStore();
  const hh = await startRouteHarness({ modules: [secretRoutes], store });
  try {
    const cases: Array<[StoreErrorCode, number, string]> = [
      ['store_integrity', 500, 'api_internal_error'],
      ['store_busy', 503, 'state_not_ready'],
      ['store_unavailable', 503, 'state_not_ready'],
      ['store_locked', 503, 'state_not_ready'],
      ['store_closed', 503, 'state_not_ready'],
      ['store_unsupported', 400, 'api_bad_request'],
      ['store_wrong_key', 500, 'api_internal_error'],
    ];
    for (const [code, status, err] of cases) {
      store.failWith = code;
      const r = await hh.post(SG, { path: 'tenants/secret-alarm-path' }, PILOT);
      assert.equal(r.status, status, code);
      assert.equal((r.json as { err: string; data: null }).err, err);
      assert.equal((r.json as { data: null }).data, null);
      // B12: list reports the failure instead of an empty list
      const l = await hh.post(SL, {}, PILOT);
      assert.equal(l.status, status, `list ${code}`);
    }
    assert.match(hh.logs(), /"alarm":"integrity_violation"/);
    assert.ok(!hh.logs().includes('secret-alarm-path'));
  } finally {
    await hh.close();
  }
});

test('lite backend: secret and policy routes are not served (SPIKE\'s 400 fallback)', async () => {
  const hh = await startRouteHarness({ modules: [secretRoutes, policyRoutes], store: new LiteStore() });
  try {
    for (const route of [S, SG, SD, SU, SX, SL, SM, '/v1/acl/policy', '/v1/acl/policy?action=list']) {
      const r = await hh.post(route, { path: 'a/b', values: { k: 'v' } }, PILOT);
      assert.equal(r.status, 400, route);
      assert.equal((r.json as { err: string }).err, 'api_bad_request');
    }
    assert.equal(hh.router.routes.length, 0);
  } finally {
    await hh.close();
  }
});

test('list: a costly listing not finished SPIKE_NEXUS_LIST_POLICY_BUDGET after its start is answered 400 "narrow it", the server serving others meanwhile; the operator is not limited', async () => {
  const hh = await startRouteHarness({ modules: [secretRoutes, policyRoutes], env: { SPIKE_NEXUS_LIST_POLICY_BUDGET: '50ms' } });
  try {
    // Costly but accepted patterns (FI-13), bound to the lister; long paths it cannot see.
    for (let i = 0; i < 6; i++) {
      const r = await hh.post('/v1/acl/policy', { name: `costly${i}`, spiffeidPattern: `^${LISTER.replace(/\./g, '\\.')}$`, pathPattern: `(.*[a-z]){12}.*Q${i}`, permissions: ['list'] }, PILOT);
      assert.equal(r.status, 200, r.body);
    }
    const seg = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3);
    for (let i = 0; i < 400; i++) await hh.ctx.store.putSecret(`t${i}/${seg}/${seg}`, { k: 'v' }, {});
    const list = hh.post(SL, {}, LISTER);
    const get = await hh.post(SG, { path: `t1/${seg}/${seg}` }, PILOT); // answered while the listing runs
    assert.equal(get.status, 200);
    const r = await list;
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /narrow it with a prefix/);
    assert.match(hh.logs(), /"reason":"list_too_costly"/);
    assert.doesNotMatch(hh.logs(), new RegExp(seg), 'no path logged');
    const all = (await hh.post(SL, {}, PILOT)).json as { keys: string[] };
    assert.equal(all.keys.length, 400, 'the operator lists without policy decisions');
  } finally {
    await hh.close();
  }
});
