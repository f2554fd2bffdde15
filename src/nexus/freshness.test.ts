/**
 * Issue 18 item 1: when the policy-freshness check cannot be made (the shared database does
 * not answer), policy-based requests are still never allowed, but the answer is 503
 * `state_not_ready` with the store's cause and `outcome: not_applied` — never the 401 that
 * means "your policies do not allow this". The superuser and role routes are decided as
 * before; once a check succeeds again, denials are denials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../lib/log.js';
import { ApiError, loadTrustRoots, recognisers, spikeIds } from '../protocol/index.js';
import { SpiffeId } from '../spiffe/id.js';
import { MemoryStore } from '../store/memory.js';
import { StoreError } from '../store/types.js';
import { NexusAuthorizer, nexusGuards } from './authz.js';
import { PolicyEngine, PolicySync } from './policy/index.js';
import { policyCheckUnavailable } from './routes/index.js';
import { runGuard } from '../http/guards.js';

const ids = recognisers(loadTrustRoots({}));
const td = spikeIds('spike.ist');
const APP = SpiffeId.parse('spiffe://spike.ist/workload/a');
const POLICY = { name: 'p', spiffeIdPattern: '^spiffe://spike\\.ist/workload/a$', pathPattern: '^a/.*$', permissions: ['read' as const] };

class FlakyGenerationStore extends MemoryStore {
  down = false;
  override async policyGeneration(): Promise<number> {
    if (this.down) throw new StoreError('store_unavailable', { failure: 'unreachable', outcome: 'not_applied' });
    return super.policyGeneration();
  }
}

test('freshness check failed → policy-based guard answers 503 with the cause (never 401); superuser unaffected; back to allow/deny after a good check', async () => {
  const store = new FlakyGenerationStore();
  const engine = new PolicyEngine();
  const sync = new PolicySync(store, engine, createLogger({ component: 'test', level: 'silent' }), true);
  await store.putPolicy(POLICY);
  await sync.reload();
  const authz = new NexusAuthorizer(engine, ids, () => {
    const f = sync.failure();
    return f === undefined ? undefined : policyCheckUnavailable(f);
  });
  const guards = nexusGuards(authz);
  assert.equal(runGuard(guards.secretGet, APP, { path: 'a/x', version: 0 }, false), true);
  assert.equal(runGuard(guards.secretGet, APP, { path: 'b/x', version: 0 }, false), false, 'a real denial');

  store.down = true;
  await assert.rejects(sync.ensureFresh());
  for (const [guard, body] of [[guards.secretGet, { path: 'a/x', version: 0 }], [guards.secretPut, { path: 'b/x' }], [guards.secretList, undefined]] as const) {
    assert.throws(() => runGuard(guard as never, APP, body as never, true), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.status, 503);
      assert.equal(e.code, 'state_not_ready');
      assert.equal(e.message, 'store unavailable: database unreachable');
      assert.deepEqual(e.fields, { outcome: 'not_applied' });
      return true;
    });
  }
  assert.equal(runGuard(guards.secretGet, td.pilotSuperuser, { path: 'a/x', version: 0 }, false), true, 'the superuser is decided as before');
  assert.equal(engine.allows(APP, 'a/x', 'read'), false, 'fail closed: the engine is empty meanwhile');

  store.down = false;
  await sync.ensureFresh();
  assert.equal(sync.failure(), undefined);
  assert.equal(runGuard(guards.secretGet, APP, { path: 'a/x', version: 0 }, false), true);
  assert.equal(runGuard(guards.secretGet, APP, { path: 'b/x', version: 0 }, false), false);
});
