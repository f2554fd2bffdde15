/**
 * Policy writes update the engine incrementally (issue 17) over the real router, guards and
 * memory store: a write with nothing else in between never relists the store, and a write
 * that cannot be proven to be the only change (another writer committed in between, or the
 * engine was emptied to fail closed) falls back to a full reload — a deleted policy denies at
 * the very next request either way (POL-17).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../store/memory.js';
import type { PolicyInput, PolicyRecord } from '../../store/types.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { policyRoutes } from './policies.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const APP = 'spiffe://spike.ist/workload/app';
const P = '/v1/acl/policy';
const PD = '/v1/acl/policy?action=delete';

/** Counts full listings; `sneak` runs right after a policy write commits, as another instance would. */
class CountingStore extends MemoryStore {
  lists = 0;
  sneak: (() => Promise<void>) | undefined;
  override async listPolicies(): Promise<PolicyRecord[]> {
    this.lists++;
    return super.listPolicies();
  }
  override async putPolicy(p: PolicyInput): Promise<PolicyRecord> {
    const rec = await super.putPolicy(p);
    await this.#runSneak();
    return rec;
  }
  override async deletePolicy(name: string): Promise<boolean> {
    const gone = await super.deletePolicy(name);
    await this.#runSneak();
    return gone;
  }
  async #runSneak(): Promise<void> {
    const s = this.sneak;
    this.sneak = undefined;
    await s?.();
  }
}

const store = new CountingStore();
let h: RouteHarness;
before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes], store });
  for (const path of ['inc/a/x', 'inc/b/x']) assert.equal((await h.post('/v1/store/secrets', { path, values: { k: 'v' } }, PILOT)).status, 200);
});
after(async () => {
  await h.close();
});

const get = (path: string): Promise<number> => h.post('/v1/store/secrets?action=get', { path }, APP).then((r) => r.status);
const grant = (name: string, pathPattern: string): Promise<number> =>
  h.post(P, { name, spiffeidPattern: '^spiffe://spike\\.ist/workload/app$', pathPattern, permissions: ['read'] }, PILOT).then((r) => r.status);

test('issue 17: puts and deletes with nothing in between never relist the store; the next request sees each', async () => {
  const before = store.lists;
  assert.equal(await get('inc/a/x'), 401);
  assert.equal(await grant('inc-a', '^inc/a/.*$'), 200);
  assert.equal(await get('inc/a/x'), 200);
  assert.equal(await grant('inc-a', '^inc/b/.*$'), 200); // narrowed to another path
  assert.equal(await get('inc/a/x'), 401);
  assert.equal(await get('inc/b/x'), 200);
  assert.equal((await h.post(PD, { id: 'inc-a' }, PILOT)).status, 200);
  assert.equal(await get('inc/b/x'), 401, 'POL-17: stale allow after delete');
  assert.equal(store.lists, before, 'a policy write relisted every policy');
  assert.equal(h.ctx.engine.generation, await store.policyGeneration());
});

test('POL-17: a change committed by someone else between the write and its refresh forces a full reload', async () => {
  assert.equal(await grant('inc-remote', '^inc/a/.*$'), 200);
  assert.equal(await get('inc/a/x'), 200);
  const before = store.lists;
  // "another instance" deletes inc-remote right after our unrelated write commits
  store.sneak = async () => {
    await MemoryStore.prototype.deletePolicy.call(store, 'inc-remote');
  };
  assert.equal(await grant('inc-other', '^inc/none/.*$'), 200);
  assert.equal(store.lists, before + 1, 'the write did not fall back to a reload');
  assert.equal(await get('inc/a/x'), 401, 'stale allow of a policy deleted elsewhere');
  assert.equal(h.ctx.engine.generation, await store.policyGeneration());
});

test('POL-17: after the engine was emptied to fail closed, the next write reloads everything', async () => {
  assert.equal(await grant('inc-keep', '^inc/b/.*$'), 200);
  assert.equal(await get('inc/b/x'), 200);
  h.ctx.engine.load([], h.ctx.engine.generation); // what a failed refresh does
  assert.equal(await get('inc/b/x'), 401, 'fail closed');
  const before = store.lists;
  assert.equal(await grant('inc-unrelated', '^inc/none/.*$'), 200);
  assert.equal(store.lists, before + 1);
  assert.equal(await get('inc/b/x'), 200, 'the reload restored the stored policies');
});
