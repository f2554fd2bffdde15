/**
 * `operator restore` on a store whose system records are damaged, or whose store fails,
 * answers a typed error (never "unhandled error in request handler").
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRouteHarness } from '../../../test/helpers/route-harness.js';
import { RootKey } from '../../crypto/index.js';
import { PATHS } from '../../protocol/index.js';
import { SqliteStore, StoreError } from '../../store/index.js';
import { SHARING_RECORD } from '../keys/sharing.js';
import { operatorRoutes } from './operator.js';

const RESTORE = 'spiffe://spike.ist/spike/pilot/role/restore';
const SHARD = { id: 1, shard: Array.from({ length: 32 }, (_, i) => i + 1) };

test('restore: a malformed sharing record → 500 "store integrity failure" (reason system_record_damaged); a failing store → 503 naming the cause', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-op-'));
  const store = new SqliteStore({ file: path.join(dir, 'spike.db') });
  await store.unlock(RootKey.generate()); // the harness loads policies
  await store.putSystem(SHARING_RECORD, Buffer.from('{"v":1,"epoch":"not a number"}'));
  const h = await startRouteHarness({ modules: [operatorRoutes], store });
  try {
    const r = await h.post(PATHS.restore, SHARD, RESTORE);
    assert.equal(r.status, 500, r.body);
    assert.equal((r.json as { err: string }).err, 'api_internal_error');
    assert.equal((r.json as { message: string }).message, 'store integrity failure');
    assert.ok(!r.body.includes('unhandled'));
    assert.match(h.logs(), /"alarm":"system_record_damaged"/);

    // the store itself fails while the record is read
    const orig = store.getSystem.bind(store);
    store.getSystem = () => Promise.reject(new StoreError('store_unavailable', { failure: 'disk_full' }));
    const f = await h.post(PATHS.restore, SHARD, RESTORE);
    assert.equal(f.status, 503, f.body);
    assert.deepEqual(f.json && { err: (f.json as { err: string }).err, message: (f.json as { message: string }).message },
      { err: 'state_not_ready', message: 'store unavailable: disk full' });
    store.getSystem = orig;
  } finally {
    await h.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('OPR-12: a restore session has no status, reset or cancel control to abuse: only the restore role submits shards; every other action is an unknown route', async () => {
  const h = await startRouteHarness({ modules: [operatorRoutes] });
  try {
    const ops = h.router.routes.filter((r) => r.path.startsWith('/v1/operator/restore'));
    assert.deepEqual(ops.map((r) => `${r.path}?action=${r.action}`), ['/v1/operator/restore?action=']);
    for (const action of ['status', 'reset', 'cancel', 'abort', 'clear']) {
      for (const peer of [RESTORE, 'spiffe://spike.ist/spike/pilot/role/superuser', 'spiffe://spike.ist/workload/w']) {
        const r = await h.post(`${PATHS.restore}?action=${action}`, {}, peer);
        assert.equal(r.status, 400, `${action} as ${peer}`);
        assert.equal((r.json as { err: string }).err, 'api_bad_request');
      }
    }
    // Anyone but the restore role is refused before the body counts for anything.
    for (const peer of ['spiffe://spike.ist/spike/pilot/role/superuser', 'spiffe://spike.ist/spike/pilot/role/recover', 'spiffe://spike.ist/workload/w']) {
      assert.equal((await h.post(PATHS.restore, SHARD, peer)).status, 401, peer);
    }
  } finally {
    await h.close();
  }
});
