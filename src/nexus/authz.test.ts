/**
 * Nexus authorisation tests (POL-01..POL-04, POL-16, POL-21, TLS-16, P4 authz-model): every
 * route decision of the authorizer and the guards derived from its table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError } from '../protocol/errors.js';
import { loadTrustRoots, recognisers, spikeIds } from '../protocol/index.js';
import { SpiffeId } from '../spiffe/id.js';
import { pol } from '../../test/helpers/policy-fixtures.js';
import { GATE_PATHS, NexusAuthorizer, nexusGuards } from './authz.js';
import { type PolicyLike, PolicyEngine } from './policy/index.js';
import { viaPolicy } from './routes/policy-errors.js';

const ids = recognisers(loadTrustRoots({}));
const td = spikeIds('spike.ist');
const id = (s: string): SpiffeId => SpiffeId.parse(s);

function setup(policies: PolicyLike[]): { engine: PolicyEngine; a: NexusAuthorizer } {
  const engine = new PolicyEngine();
  engine.load(policies, 1);
  return { engine, a: new NexusAuthorizer(engine, ids) };
}

/** Every Nexus decision for one caller, as a record (route → allowed). */
function matrix(a: NexusAuthorizer, peer: SpiffeId, path = 'apps/a'): Record<string, boolean> {
  return {
    put: a.canPutSecret(peer, path),
    get: a.canGetSecret(peer, path),
    delete: a.canDeleteSecret(peer, path),
    undelete: a.canUndeleteSecret(peer, path),
    destroy: a.canDestroySecret(peer, path),
    metadata: a.canReadSecretMetadata(peer, path),
    list: a.canListSecrets(peer),
    policyPut: a.canPutPolicy(peer),
    policyGet: a.canGetPolicy(peer),
    policyList: a.canListPolicies(peer),
    policyDelete: a.canDeletePolicy(peer),
    cipher: a.canUseCipher(peer),
    recover: a.canRecover(peer),
    restore: a.canRestore(peer),
    verify: a.canVerifyBootstrap(peer),
  };
}
const all = (m: Record<string, boolean>, keys: string[], v: boolean): void => {
  for (const k of keys) assert.equal(m[k], v, k);
};
const SECRET_AND_POLICY = ['put', 'get', 'delete', 'undelete', 'destroy', 'metadata', 'list', 'policyPut', 'policyGet', 'policyList', 'policyDelete'];
const BREAK_GLASS = ['recover', 'restore', 'verify'];
test('POL-01: with no policies every workload is denied everywhere; the superuser passes', () => {
  const { a } = setup([]);
  const w = matrix(a, id('spiffe://spike.ist/app/x'));
  all(w, [...SECRET_AND_POLICY, 'cipher', ...BREAK_GLASS], false);
  const su = matrix(a, td.pilotSuperuser);
  all(su, [...SECRET_AND_POLICY, 'cipher'], true);
  all(su, BREAK_GLASS, false);
  const alice = matrix(a, id('spiffe://spike.ist/spike/pilot/role/superuser/alice'));
  all(alice, [...SECRET_AND_POLICY, 'cipher'], true);
});

test('TLS-16 look-alikes: …/role/superuser-x and another trust domain superuser are ordinary workloads', () => {
  const { a } = setup([]);
  for (const s of ['spiffe://spike.ist/spike/pilot/role/superuser-x', 'spiffe://evil.org/spike/pilot/role/superuser', 'spiffe://spike.ist/spike/pilot/role']) {
    all(matrix(a, id(s)), [...SECRET_AND_POLICY, 'cipher', ...BREAK_GLASS], false);
  }
});

test('route rules: lite never for secrets/policies (even with super), always for cipher; roles only for break-glass', () => {
  const { a } = setup([pol('all', '.*', '.*', ['super'])]);
  const lite = matrix(a, td.liteWorkload);
  all(lite, SECRET_AND_POLICY, false);
  assert.equal(lite.cipher, true);
  const rec = matrix(a, td.pilotRecover);
  assert.equal(rec.recover, true);
  assert.equal(rec.restore, false);
  all(rec, SECRET_AND_POLICY, true); // policy-checked like any workload: the `.*` super policy applies
  const res = matrix(a, td.pilotRestore);
  assert.equal(res.restore, true);
  assert.equal(res.recover, false);
  assert.equal(matrix(a, td.bootstrap).verify, true);
  // POL-16: the `.*`/`.*` super policy does not open break-glass routes to a workload.
  all(matrix(a, id('spiffe://spike.ist/app/x')), BREAK_GLASS, false);
  all(matrix(a, id('spiffe://spike.ist/app/x')), [...SECRET_AND_POLICY, 'cipher'], true);
});

test('permissions: each route wants exactly one permission; super satisfies all; no combining', () => {
  const w = id('spiffe://spike.ist/app/w');
  const p = (perms: string[]) => setup([pol('p', '^spiffe://spike\\.ist/app/w$', '^apps/.*$', perms)]).a;
  const r = matrix(p(['read']), w);
  assert.deepEqual([r.get, r.metadata, r.put, r.delete, r.list], [true, true, false, false, false]);
  const wr = matrix(p(['write']), w);
  assert.deepEqual([wr.get, wr.put, wr.delete, wr.undelete, wr.destroy], [false, true, true, true, true]);
  const l = matrix(p(['list']), w);
  assert.equal(l.get, false, 'POL-14: list alone does not allow get');
  const su = matrix(p(['super']), w);
  all(su, ['get', 'put', 'delete', 'metadata'], true);
  all(su, ['policyPut', 'policyGet', 'cipher'], false); // path pattern does not cover the gate paths
  // permissions are never combined across policies
  const split = setup([
    pol('r', '^spiffe://spike\\.ist/app/w$', '^apps/a$', ['read']),
    pol('w', '^spiffe://spike\\.ist/app/w$', '^apps/b$', ['write']),
  ]).a;
  assert.equal(split.canPutSecret(w, 'apps/a'), false);
  assert.equal(split.canGetSecret(w, 'apps/b'), false);
  // execute on the cipher gate path
  assert.equal(setup([pol('x', 'spiffe://spike\\.ist/app/w', 'spike/system/cipher/exec', ['execute'])]).a.canUseCipher(w), true);
});

test('POL-02: substring-style patterns acl/system/spike/secret/exec reach no gate path (also when injected into storage)', () => {
  const w = id('spiffe://example.org/app');
  for (const path of ['acl', 'system', 'spike', 'secret', 'exec', 'spike/system', 'system/acl']) {
    const { engine, a } = setup([pol('p', '^spiffe://example\\.org/app$', path, ['write', 'read', 'list', 'execute', 'super'])]);
    all(matrix(a, w, 'x/y'), ['policyPut', 'policyGet', 'policyList', 'policyDelete', 'cipher'], false);
    assert.equal(a.canListSecrets(w), true, 'list is granted somewhere (POL-21 gate)');
    for (const gate of Object.values(GATE_PATHS)) assert.equal(engine.allows(w, gate, 'super'), false, `${path} → ${gate}`);
    assert.equal(engine.allows(w, path, 'write'), true, 'the literal secret of that name is covered');
    assert.equal(engine.allows(w, `x${path}y`, 'write'), false, 'no substring semantics (A6)');
  }
});

test('POL-03: an unanchored identity pattern is anchored by full match', () => {
  const { engine, a } = setup([]);
  const c = engine.compile(pol('admins', 'spiffe://example\\.org/admin', '^spike/system/acl$', ['write']));
  engine.load([c], 2);
  assert.equal(a.canPutPolicy(id('spiffe://example.org/admin')), true);
  assert.equal(a.canPutPolicy(id('spiffe://example.org/admin-attacker')), false);
  assert.equal(a.canPutPolicy(id('spiffe://example.org/admin/x')), false);
  assert.equal(a.canPutPolicy(id('spiffe://xexample.org/admin')), false);
});

test('POL-04: "anchored-looking" alternation is structural: ^a|b$ means exactly a or b', () => {
  const { engine, a } = setup([pol('alt', '^spiffe://td/admin|zzz$', '^spike/system/acl|x$', ['write'])]);
  assert.equal(a.canPutPolicy(id('spiffe://td/admin')), true);
  assert.equal(a.canPutPolicy(id('spiffe://td/admin-x')), false);
  assert.equal(a.canPutPolicy(id('spiffe://td/evilzzz')), false);
  assert.equal(engine.allows('zzz', 'x', 'write'), true);
  assert.equal(engine.allows('spiffe://td/admin', 'spike/system/acl/x', 'write'), false);
  assert.equal(engine.allows('spiffe://td/admin', 'xspike/system/acl', 'write'), false);
  // The API's SPIFFE-pattern grammar does not accept `|` in identity patterns at all.
  assert.throws(() => viaPolicy(() => engine.compile(pol('alt', '^spiffe://td/admin|zzz$', 'x', ['read']))), (e: unknown) => e instanceof ApiError && e.status === 400);
});

test('POL-21: list gate and per-path visibility (gaps A5)', () => {
  const w = id('spiffe://spike.ist/app/w');
  const { a } = setup([pol('l', '^spiffe://spike\\.ist/app/w$', '^tenants/a/.*$', ['list'])]);
  assert.equal(a.canListSecrets(w), true);
  assert.equal(a.canSeeSecretPath(w, 'tenants/a/x'), true);
  assert.equal(a.canSeeSecretPath(w, 'tenants/b/x'), false);
  assert.equal(a.canGetSecret(w, 'tenants/a/x'), false);
  // SPIKE-style gate grant: may list, but sees only what its other policies cover.
  const g = setup([pol('g', '^spiffe://spike\\.ist/app/w$', 'spike/system/secret', ['list']), pol('r', '^spiffe://spike\\.ist/app/w$', 'db/.*', ['read'])]).a;
  assert.equal(g.canListSecrets(w), true);
  assert.equal(g.canSeeSecretPath(w, 'db/x'), true);
  assert.equal(g.canSeeSecretPath(w, 'other/x'), false);
  const none = setup([pol('r', '^spiffe://spike\\.ist/app/w$', 'db/.*', ['read'])]).a;
  assert.equal(none.canListSecrets(w), false);
  assert.equal(none.canListSecrets(td.liteWorkload), false);
  assert.equal(none.canSeeSecretPath(td.pilotSuperuser, 'anything'), true);
});

test('nexusGuards wire the authoriser to route bodies', () => {
  const { a } = setup([pol('r', '^spiffe://spike\\.ist/app/w$', '^apps/.*$', ['read'])]);
  const g = nexusGuards(a);
  const w = id('spiffe://spike.ist/app/w');
  assert.equal(g.secretGet.check(w, { path: 'apps/x', version: 0 }), true);
  assert.equal(g.secretGet.check(w, { path: 'other/x', version: 0 }), false);
  assert.equal(g.secretPut.check(w, { path: 'apps/x', values: new Map(), cas: undefined, customMetadata: undefined, maxVersions: undefined }), false);
  assert.equal(g.recover.check(td.pilotRecover, undefined), true);
  assert.equal(g.cipher.check(td.liteWorkload, undefined), true);
});

test('nexusGuards pre-check (admits): identity only, before the body; never narrower than the full check', () => {
  const w = id('spiffe://spike.ist/app/w');
  const nobody = id('spiffe://spike.ist/app/nobody');
  const { a } = setup([
    pol('r', '^spiffe://spike\\.ist/app/w$', '^apps/.*$', ['read']),
    pol('s', '^spiffe://spike\\.ist/app/su$', 'only/this', ['super']),
  ]);
  const g = nexusGuards(a);
  // a caller with a read policy somewhere may reach the read routes (its body decides), not the write ones
  assert.equal(g.secretGet.admits(w), true);
  assert.equal(g.secretMetadata.admits(w), true);
  for (const k of ['secretPut', 'secretDelete', 'secretUndelete', 'secretDestroy'] as const) assert.equal(g[k].admits(w), false, k);
  // no policy → refused on identity on every route; Lite → never on the secret routes
  for (const [k, guard] of Object.entries(g)) assert.equal(guard.admits(nobody), false, `${k} admits a caller with no rights`);
  for (const k of ['secretPut', 'secretGet', 'secretDelete', 'secretUndelete', 'secretDestroy', 'secretMetadata', 'secretList'] as const) {
    assert.equal(g[k].admits(td.liteWorkload), false, `${k} admits Lite`);
    assert.equal(g[k].admits(td.pilotSuperuser), true, `${k} refuses Pilot`);
  }
  // `super` on one path admits to every secret route (the path check then narrows it)
  const su = id('spiffe://spike.ist/app/su');
  assert.equal(g.secretPut.admits(su), true);
  assert.equal(g.secretPut.check(su, { path: 'other', values: new Map(), cas: undefined, customMetadata: undefined, maxVersions: undefined }), false);
  // break-glass: the pre-check is the role check itself
  assert.equal(g.restore.admits(td.pilotRestore), true);
  for (const p of [td.pilotSuperuser, td.pilotRecover, su, w]) assert.equal(g.restore.admits(p), false);
});

test('nexusGuards: the full check implies the pre-check (property over callers and paths)', () => {
  const peers = ['app/w', 'app/x', 'spike/workload/role/lite', 'spike/pilot/role/superuser', 'app/none'].map((p) => id(`spiffe://spike.ist/${p}`));
  const { a } = setup([
    pol('r', '^spiffe://spike\\.ist/app/w$', '^apps/.*$', ['read']),
    pol('l', '^spiffe://spike\\.ist/app/.*$', '^lists/.*$', ['list']),
    pol('x', '^spiffe://spike\\.ist/app/x$', 'apps/x', ['write', 'read']),
    pol('lite', '.*', '^apps/.*$', ['super']),
  ]);
  const g = nexusGuards(a);
  fc.assert(
    fc.property(fc.constantFrom(...peers), fc.constantFrom('apps/x', 'apps/y', 'lists/a', 'other', 'spike/system/acl'), (peer, path) => {
      const body = { path, version: 0, versions: [], values: new Map(), cas: undefined, customMetadata: undefined, maxVersions: undefined };
      for (const [k, guard] of Object.entries(g)) {
        if ((guard.check as (p: SpiffeId, b: unknown) => boolean)(peer, body)) assert.equal(guard.admits(peer), true, `${k}: allowed but not pre-admitted`);
      }
    }),
    { numRuns: 500 },
  );
});
