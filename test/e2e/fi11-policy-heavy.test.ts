/**
 * FI-11 (short form): policy-heavy authorization. 5,000 policies created by 16 concurrent
 * writers (the one that grants the reader last), then 200 reads by a non-admin workload at about 200 per second. Expected:
 * every read allowed, latency bounded. The bound is a liveness ceiling (p99 < 100 ms here;
 * the catalogue's 20 ms is a benchmark figure for a quiet machine), p50/p99/max reported.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { waitFor } from './secrets-helpers.js';

const POLICIES = 5_000;
const READS = 200;
const APP = 'spiffe://spike.ist/workload/fi11-app';
let stack: Stack;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2, identities: { app: APP } });
});
after(async () => {
  await stack?.stop();
});

test('FI-11: 5,000 policies, 200 reads at ~200 rps by a workload granted by the last one: all allowed, p99 bounded', { timeout: 150_000 }, async (t) => {
  const admin = await stack.client('pilot');
  await admin.putSecret('fi11/s', { v: 'ok' });
  const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < POLICIES - 1; i = next++) {
      await admin.putPolicy({ name: `fi11-${i}`, spiffeIdPattern: `^spiffe://spike\\.ist/workload/other-${i}$`, pathPattern: `^apps/${i}/.*$`, permissions: ['read'] });
    }
  }));
  await admin.putPolicy({ name: 'fi11-app', spiffeIdPattern: `^${APP.replace(/\./g, '\\.')}$`, pathPattern: '^fi11/.*$', permissions: ['read'] });
  const created = Date.now() - t0;
  t.diagnostic(`${POLICIES} policies created by 16 writers in ${created} ms`);
  // Liveness ceiling: each write used to reload every policy when writes overlapped
  // (quadratic: 1,000 took 19 s, 5,000 several minutes); now 18 s measured.
  assert.ok(created < 90_000, `creating ${POLICIES} policies took ${created} ms`);

  const app = await stack.client('app');
  await waitFor(async () => (await app.getSecret('fi11/s').catch(() => undefined))?.['v'] === 'ok', 30_000, 'the app allowed to read');
  const lat: number[] = [];
  const start = Date.now();
  for (let i = 0; i < READS; i++) {
    // Paced at ~200 per second: the i-th read starts no sooner than i × 5 ms.
    const wait = start + i * 5 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const r0 = performance.now();
    assert.equal((await app.getSecret('fi11/s'))['v'], 'ok');
    lat.push(performance.now() - r0);
  }
  lat.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(lat[Math.min(lat.length - 1, Math.floor(lat.length * q))]! * 10) / 10;
  t.diagnostic(`reads: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
  assert.ok(at(0.99) < 100, `p99 ${at(0.99)} ms with ${POLICIES} policies (ceiling 100 ms)`);
});
