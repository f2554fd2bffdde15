/**
 * PolicySync.ensureFresh on a shared store (issue 8, POL-17 across instances): a request
 * that arrives after another instance committed a policy change must not be answered from
 * a generation read that was already on its way before that commit. The store below is
 * the real in-memory store whose `policyGeneration()` takes its snapshot at call time and
 * answers only when the test releases it — a slow database read, made deterministic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../lib/log.js';
import { MemoryStore } from '../../store/memory.js';
import { PolicyEngine } from './engine.js';
import { PolicySync } from './sync.js';

class SlowGenerationStore extends MemoryStore {
  readonly pending: Array<() => void> = [];
  reads = 0;
  override async policyGeneration(): Promise<number> {
    const snapshot = await super.policyGeneration(); // taken now, answered later
    this.reads++;
    await new Promise<void>((r) => this.pending.push(r));
    return snapshot;
  }
  releaseAll(): void {
    for (const r of this.pending.splice(0)) r();
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

const POLICY = { name: 'p', spiffeIdPattern: '^spiffe://spike\\.ist/workload/a$', pathPattern: '^a/.*$', permissions: ['read' as const] };

test('POL-17 across instances: a request arriving after a remote change never joins a check whose read predates it', async () => {
  const store = new SlowGenerationStore();
  const engine = new PolicyEngine();
  const sync = new PolicySync(store, engine, createLogger({ component: 'test', level: 'silent' }), true);
  engine.load([], 0);

  const early = sync.ensureFresh(); // read #1 in flight with generation 0
  await flush();
  await store.putPolicy(POLICY); // "another instance" commits: generation 1
  let lateDone = false;
  const late = sync.ensureFresh().then(() => { lateDone = true; });
  const alsoLate = sync.ensureFresh(); // shares the queued check, no third read
  store.releaseAll(); // read #1 answers 0 (its snapshot)
  await early;
  await flush();
  assert.equal(lateDone, false, 'the late request was answered by the stale read');
  assert.equal(store.reads, 2, 'exactly one more read for all requests that arrived meanwhile');
  // the queued check's reads (generation, then reload's generation) answer with 1
  for (let i = 0; i < 5 && !lateDone; i++) {
    store.releaseAll();
    await flush();
  }
  await late;
  await alsoLate;
  assert.equal(engine.generation, 1, 'the late request ran with the old policy set');
});

test('ensureFresh on an unshared store does nothing; a failed check does not wedge later ones', async () => {
  const store = new SlowGenerationStore();
  const engine = new PolicyEngine();
  engine.load([], 0);
  const local = new PolicySync(store, engine, createLogger({ component: 'test', level: 'silent' }), false);
  await local.ensureFresh();
  assert.equal(store.reads, 0);

  const shared = new PolicySync(store, engine, createLogger({ component: 'test', level: 'silent' }), true);
  const failing = new SlowGenerationStore();
  await failing.close(); // every call throws store_closed
  const broken = new PolicySync(failing, engine, createLogger({ component: 'test', level: 'silent' }), true);
  await assert.rejects(broken.ensureFresh(), (e: { code?: string }) => e.code === 'store_closed');
  await assert.rejects(broken.ensureFresh(), (e: { code?: string }) => e.code === 'store_closed');

  const p = shared.ensureFresh();
  await flush();
  store.releaseAll();
  await p;
  assert.equal(store.reads, 1);
});

test('attack-rollback-stale-policies: a store whose policy generation went back is loaded, after the rollback check was asked to look at once; a store that moved forward is not held up', async () => {
  class BackwardStore extends MemoryStore {
    stated = 7;
    override async policyGeneration(): Promise<number> {
      return this.stated;
    }
  }
  const store = new BackwardStore();
  await store.putPolicy({ ...POLICY, name: 'older' });
  const engine = new PolicyEngine();
  const sync = new PolicySync(store, engine, createLogger({ component: 'test', level: 'silent' }), true);
  const order: string[] = [];
  sync.beforeGoingBack = async () => {
    order.push(`look (engine at ${engine.generation})`);
  };
  await sync.reload();
  assert.deepEqual(order, [], 'first load: nothing went back');
  store.stated = 3; // the store was put back
  await sync.reload();
  assert.deepEqual(order, ['look (engine at 7)'], 'asked before the older set was taken');
  assert.equal(engine.generation, 3);
  store.stated = 4;
  await sync.reload();
  assert.deepEqual(order, ['look (engine at 7)'], 'forward: not asked again');
});
