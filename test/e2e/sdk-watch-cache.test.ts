/**
 * The SDK's read helpers against a real stack (issue 15): `watchSecret` sees a secret changed
 * by someone else (the `spike` CLI, another identity's process) and tells the app once per
 * change; `createSecretCache` serves a read from memory within its TTL, reads Nexus again after
 * `invalidate`, and shares one read between concurrent callers. Unit tests cover the timing
 * rules with fake readers; this file checks the same helpers over real mTLS, SQLite and a
 * second process writing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretCache, watchSecret, type NexusClient, type SecretValues } from '../../src/sdk/index.js';
import { waitFor } from '../helpers/mtls-harness.js';
import { Stack } from '../helpers/stack.js';

let stack: Stack;
let pilot: NexusClient;

before(async () => {
  stack = await Stack.start();
  await stack.waitReady();
  pilot = await stack.client('pilot');
});

after(async () => {
  await stack?.stop();
});

async function cliPut(path: string, kv: string): Promise<void> {
  const r = await stack.spike(['secret', 'put', path, kv]);
  assert.equal(r.code, 0, r.stderr);
}

test('watchSecret: a change written by another process (the spike CLI) reaches onChange once, with the new values', async () => {
  await pilot.putSecret('watch/db', { password: 'one' });
  const seen: SecretValues[] = [];
  const errors: unknown[] = [];
  const w = watchSecret(pilot, 'watch/db', { intervalMs: 50, onChange: (v) => seen.push({ ...v }), onError: (e) => errors.push(e) });
  try {
    assert.deepEqual({ ...(await w.ready()) }, { password: 'one' });
    await cliPut('watch/db', 'password=two');
    await waitFor(() => seen.length >= 2, 'onChange with the CLI\'s write', 60_000);
    assert.deepEqual(seen[1], { password: 'two' });
    assert.deepEqual({ ...w.current }, { password: 'two' });
    // Several more reads of unchanged values: no further onChange.
    const reads = seen.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(seen.length, reads, 'onChange only when the values change');
    assert.deepEqual(errors, []);
  } finally {
    w.close();
  }
  assert.equal(w.current, undefined, 'closing drops the values');
});

test('createSecretCache: within the TTL a read is served from memory; invalidate reads Nexus again; concurrent misses share one read', async () => {
  await pilot.putSecret('cache/api', { key: 'v1' });
  let reads = 0;
  const counting = { getSecret: (p: string) => { reads++; return pilot.getSecret(p); } };
  const cache = createSecretCache(counting, { ttlMs: 10 * 60_000 });
  try {
    const [a, b] = await Promise.all([cache.getSecret('cache/api'), cache.getSecret('cache/api')]);
    assert.deepEqual({ ...a }, { key: 'v1' });
    assert.deepEqual({ ...b }, { key: 'v1' });
    assert.equal(reads, 1, 'two concurrent misses, one read');
    await cliPut('cache/api', 'key=v2');
    assert.deepEqual({ ...(await cache.getSecret('cache/api')) }, { key: 'v1' }, 'served from memory within the TTL');
    assert.equal(reads, 1);
    cache.invalidate('cache/api');
    assert.deepEqual({ ...(await cache.getSecret('cache/api')) }, { key: 'v2' });
    assert.equal(reads, 2);
  } finally {
    cache.close();
  }
});
