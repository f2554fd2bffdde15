/**
 * Issue 13 parts 1 and 2 on real processes: the operations listener of Nexus and the
 * Keepers (probes through a start and a bootstrap, Keeper loss, database down on postgres)
 * and `/metrics` (parsed strictly, counters move after real SDK requests, no secret path,
 * value or workload ID in any answer).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, TD, e2eBackends } from '../helpers/stack.js';
import { parsePrometheusText, sumOf } from '../helpers/prom-text.js';

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readyStatus = (url: string, status: number) => async (): Promise<{ status: number; body: string } | undefined> => {
  const r = await get(`${url}/readyz`);
  return r.status === status ? r : undefined;
};

// One stack for the probes and the metrics (a stack start is the costly part of each).
/** glibc's run-time version, when the C library is glibc (where malloc_trim exists). */
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

describe('ops probes and metrics (sqlite)', () => {
  let stack: Stack;
  before(async () => {
    stack = await Stack.start({
      ops: true, bootstrap: false, nexusEnv: { SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: '1s' },
      identities: { 'canary-app': `spiffe://${TD}/workload/canary-7f3a91` },
    });
  });
  after(async () => { await stack?.stop(); });

  test('readyz 503 → 200 through a Nexus start and bootstrap; Keepers 503 until they hold a share', async () => {
    const nexus = stack.nexusOpsUrl();
    assert.equal((await get(`${nexus}/healthz`)).status, 200);
    const r = await get(`${nexus}/readyz`);
    assert.equal(r.status, 503);
    const body = JSON.parse(r.body) as { ready: boolean; failing: string[] };
    assert.equal(body.ready, false);
    assert.ok(body.failing.includes('root_key'), r.body);
    assert.ok(!body.failing.includes('store'), r.body);
    for (let i = 1; i <= 3; i++) {
      const k = await get(`${stack.keeperOpsUrl(i)}/readyz`);
      assert.equal(k.status, 503);
      assert.deepEqual(JSON.parse(k.body), { ready: false, failing: ['share'] });
    }
    const b = await stack.runBootstrap();
    assert.equal(b.code, 0, b.stderr);
    await stack.waitReady();
    const ok = await until('nexus ready', readyStatus(nexus, 200));
    assert.deepEqual(JSON.parse(ok.body), { ready: true, failing: [] });
    for (let i = 1; i <= 3; i++) await until(`keeper ${i} ready`, readyStatus(stack.keeperOpsUrl(i), 200));
    const head = await fetch(`${nexus}/readyz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await fetch(`${nexus}/readyz`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${nexus}/v1/store/secrets`)).status, 404);
  });

  test('Keeper loss: a restarted Keeper answers 503 until Nexus re-pushes its share', async () => {
    await stack.killKeeper(2);
    await stack.startKeeper(2);
    const url = stack.keeperOpsUrl(2);
    // The re-push runs every second here; the first answer may already be 200.
    const first = await get(`${url}/readyz`);
    assert.ok(first.status === 503 || first.status === 200, first.body);
    await until('keeper 2 re-hydrated', readyStatus(url, 200));
    assert.equal((await get(`${stack.nexusOpsUrl()}/readyz`)).status, 200);
  });

  test('/metrics parses; request counters move after real SDK requests; no path, value or workload ID leaks', async () => {
    const nexus = stack.nexusOpsUrl();
    await until('nexus ready', readyStatus(nexus, 200));
    const before = (await scrape(nexus)).e;
    for (const name of ['spike_http_requests_total', 'spike_http_request_duration_seconds', 'spike_http_requests_in_flight',
      'spike_tls_connections_verified', 'spike_tls_connections_handshaking', 'spike_svid_expiry_timestamp_seconds',
      'spike_root_key_present', 'spike_sharing_epoch', 'spike_policies', 'spike_store_operation_duration_seconds',
      'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(before.types.has(name.replace(/_total$/, '')) || before.types.has(name), name);
    }
    assert.equal(sumOf(before, 'spike_root_key_present'), 1);
    assert.ok(sumOf(before, 'spike_svid_expiry_timestamp_seconds') > Date.now() / 1000);
    const putsBefore = sumOf(before, 'spike_http_requests_total', { route: '/v1/store/secrets', decision: 'allow', status: '200' });

    const canaryPath = 'secrets/canary-e4b1c9/db';
    const canaryValue = 'canary-value-5d2f8a61';
    const pilot = await stack.client('pilot');
    await pilot.putSecret(canaryPath, { password: canaryValue });
    const got = await pilot.getSecret(canaryPath);
    assert.equal(got?.['password'], canaryValue);
    // Cipher bytes: 100 plaintext bytes in (JSON mode) and 100 back out of the decrypt.
    const sealed = await pilot.encrypt(new Uint8Array(100).fill(7));
    assert.equal((await pilot.decrypt(sealed)).length, 100);
    // A workload with no policy: denied, and its SPIFFE ID must not show up in metrics.
    const app = await stack.client('canary-app');
    await assert.rejects(app.getSecret(canaryPath));

    const after = await scrape(nexus);
    const puts = sumOf(after.e, 'spike_http_requests_total', { route: '/v1/store/secrets', decision: 'allow', status: '200' });
    assert.ok(puts >= putsBefore + 2, `allowed secret requests ${putsBefore} → ${puts}`);
    assert.ok(sumOf(after.e, 'spike_http_requests_total', { decision: 'deny' }) >= 1);
    assert.ok(sumOf(after.e, 'spike_http_request_duration_seconds_count', { route: '/v1/store/secrets' }) >= 2);
    assert.ok(sumOf(after.e, 'spike_store_operation_duration_seconds_count', { op: 'putSecret', result: 'ok' }) >= 1);
    assert.ok(sumOf(after.e, 'spike_store_commit_batch_size_count') > sumOf(before, 'spike_store_commit_batch_size_count'), 'a committed sqlite group is counted');
    assert.ok(sumOf(after.e, 'spike_tls_connections_verified') >= 1);
    assert.ok(sumOf(after.e, 'spike_cipher_bytes_total', { direction: 'in' }) - sumOf(before, 'spike_cipher_bytes_total', { direction: 'in' }) >= 100 + 100 + 16);
    assert.ok(sumOf(after.e, 'spike_cipher_bytes_total', { direction: 'out' }) - sumOf(before, 'spike_cipher_bytes_total', { direction: 'out' }) >= 100 + 100 + 16);
    assert.ok(after.e.samples.some((s) => s.name === 'spike_keeper_last_contact_timestamp_seconds' && s.labels['keeper'] === '1'));

    const ready = await get(`${nexus}/readyz`);
    const keeper = await scrape(stack.keeperOpsUrl(1));
    assert.equal(sumOf(keeper.e, 'spike_keeper_share_held'), 1);
    // Both servers give freed native memory back (src/lib/malloc-trim.ts): the trim at start is counted.
    if (glibc !== undefined) {
      for (const e of [after.e, keeper.e]) {
        assert.equal(sumOf(e, 'spike_malloc_trim_active'), 1, 'malloc_trim is not running');
        assert.ok(sumOf(e, 'spike_malloc_trims_total') >= 1, 'no malloc_trim at start');
      }
    }
    for (const text of [after.text, ready.body, keeper.text]) {
      for (const canary of ['canary-e4b1c9', canaryValue, 'canary-7f3a91', 'workload/canary', 'pilot/role']) {
        assert.ok(!text.includes(canary), `${canary} leaked`);
      }
    }
  });
});

async function scrape(url: string): Promise<{ text: string; e: ReturnType<typeof parsePrometheusText> }> {
  const r = await get(`${url}/metrics`);
  assert.equal(r.status, 200);
  return { text: r.body, e: parsePrometheusText(r.body) };
}

describe('ops probes (postgres)', { skip: !e2eBackends().includes('postgres') }, () => {
  let stack: Stack;
  before(async () => {
    stack = await Stack.start({ ops: true, backend: 'postgres' });
  });
  after(async () => { await stack?.stop(); });

  test('readyz names the store while the database is down, and recovers', async () => {
    const nexus = stack.nexusOpsUrl();
    await until('nexus ready', readyStatus(nexus, 200));
    await stack.postgres!.down('immediate');
    try {
      const r = await until('store failing', readyStatus(nexus, 503), 30_000);
      const body = JSON.parse(r.body) as { failing: string[] };
      assert.ok(body.failing.includes('store'), r.body);
      assert.ok(!body.failing.includes('root_key'), r.body);
      assert.equal((await get(`${nexus}/healthz`)).status, 200);
    } finally {
      await stack.postgres!.up();
    }
    await until('nexus ready again', readyStatus(nexus, 200), 60_000);
  });
});
