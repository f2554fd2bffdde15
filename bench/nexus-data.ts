/**
 * Nexus data-plane benchmarks (issue 5; goals, not asserts), each against a baseline measured
 * in the same run on the same machine:
 *
 * 1. GET on a warm connection: sequential secret reads from spike-nexus (child process, SQLite,
 *    real mTLS) vs a bare Node `https` mTLS JSON echo (worker thread, same SVIDs, same client:
 *    the project's undici mTLS dispatcher, one connection). Goal ≥ 0.8×.
 * 2. PUT with 64 concurrent writers through the SDK and Nexus (group commit, D12) vs one
 *    `synchronous=FULL` transaction per write on a bare SqliteStore with group commit off
 *    (64 writers, in-process). Goal ≥ 5×.
 * 3. Authorisation latency: a workload's GET against an in-process Nexus (memory backend, same
 *    mTLS) holding 10,000 policies vs one holding only the caller's policy; plus the pure
 *    engine decision time. Goal ≤ 1.2×. Also reported (`s.policy_write.10k`, goal ≤ 2×): one
 *    policy write with 10,000 policies vs the same write with none.
 *
 * `benchNexusData(stack?)` uses the given stack (sqlite) or starts and stops its own.
 * Run alone: `node dist/bench/nexus-data.js`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Writable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { loadTrustRoots, recognisers } from '../src/protocol/index.js';
import { loadNexusConfig } from '../src/config/index.js';
import { RootKey } from '../src/crypto/index.js';
import { createLogger } from '../src/lib/log.js';
import { PolicyEngine } from '../src/nexus/policy/index.js';
import { startNexus } from '../src/nexus/server.js';
import type { NexusClient } from '../src/sdk/index.js';
import { SpiffeId } from '../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher, svidChainPem, svidPrivateKeyPem } from '../src/spiffe/index.js';
import { MemoryStore } from '../src/store/memory.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { Stack } from '../test/helpers/stack.js';
import type { BenchResult } from './types.js';

const BENCH_APP = 'spiffe://spike.ist/workload/bench-app';
const NEXUS_ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
const GET_BODY = JSON.stringify({ path: 'bench/get/creds' });
const VALUE = { username: 'admin', password: 'p'.repeat(32) };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export interface LatencyRun { opsPerSec: number; p50Us: number; p99Us: number; n: number }

/** Sequential POSTs on one warm connection for `budgetMs`. */
export async function sequentialPosts(dispatcher: Dispatcher, url: string, body: string, budgetMs: number): Promise<LatencyRun> {
  const one = async (): Promise<void> => {
    const r = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
  };
  for (let i = 0; i < 200; i++) await one(); // warm-up: connection, JIT
  const lat: number[] = [];
  const start = performance.now();
  while (performance.now() - start < budgetMs) {
    const t = performance.now();
    await one();
    lat.push((performance.now() - t) * 1000);
  }
  const elapsed = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (lat.length * 1000) / elapsed, p50Us: percentile(lat, 50), p99Us: percentile(lat, 99), n: lat.length };
}

/** A bare Node https mTLS JSON echo in a worker thread (its own event loop, like a separate server). */
async function startEcho(cert: string, key: Buffer, ca: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const code = `
const https = require('node:https');
const { parentPort, workerData } = require('node:worker_threads');
const srv = https.createServer({ cert: workerData.cert, key: workerData.key, ca: workerData.ca, requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 30000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const out = Buffer.from(JSON.stringify({ data: { password: 'p'.repeat(32), username: 'admin', path: typeof body.path } }));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store, no-cache, must-revalidate, private', Pragma: 'no-cache', Expires: '0', 'Content-Length': out.length });
    res.end(out);
  });
});
srv.listen(0, '127.0.0.1', () => parentPort.postMessage(srv.address().port));
parentPort.on('message', (m) => { if (m === 'stop') { srv.closeAllConnections(); srv.close(() => process.exit(0)); } });
`;
  const w = new Worker(code, { eval: true, workerData: { cert, key, ca } });
  key.fill(0);
  const port = await new Promise<number>((resolve, reject) => {
    w.once('message', (p: number) => resolve(p));
    w.once('error', reject);
  });
  return {
    port,
    stop: async () => {
      w.postMessage('stop');
      await new Promise<void>((r) => w.once('exit', () => r()));
    },
  };
}

async function benchGet(stack: Stack, pilot: NexusClient, budgetMs: number): Promise<BenchResult[]> {
  await pilot.putSecret('bench/get/creds', VALUE);
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  const nexusSource = await WorkloadX509Source.open({ endpoint: stack.socket('nexus'), timeoutMs: 15_000 });
  const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections: 1 });
  const nsvid = nexusSource.getX509Svid();
  const ca = nexusSource.bundleSet().allAuthorities().map((c) => c.toString()).join('');
  const echo = await startEcho(svidChainPem(nsvid), svidPrivateKeyPem(nsvid), ca);
  try {
    const echoRun = await sequentialPosts(dispatcher, `https://localhost:${echo.port}/v1/store/secrets?action=get`, GET_BODY, budgetMs);
    const nexusRun = await sequentialPosts(dispatcher, `${stack.nexusUrl}/v1/store/secrets?action=get`, GET_BODY, budgetMs);
    // the SDK path (JSON decode, typed result) on the same kind of connection
    let sdkN = 0;
    const s0 = performance.now();
    while (performance.now() - s0 < Math.min(budgetMs, 1500)) {
      await pilot.getSecret('bench/get/creds');
      sdkN++;
    }
    const sdkOps = (sdkN * 1000) / (performance.now() - s0);
    return [
      { id: 'nexus.get.echo-baseline.ops', name: 'bare Node https mTLS JSON echo, warm connection, sequential', value: echoRun.opsPerSec, unit: 'ops/s', note: `p50 ${echoRun.p50Us.toFixed(0)} µs, p99 ${echoRun.p99Us.toFixed(0)} µs` },
      {
        id: 'nexus.get.warm.ops', name: 'Nexus secret GET (SQLite, mTLS), warm connection, sequential', value: nexusRun.opsPerSec, unit: 'ops/s',
        baseline: echoRun.opsPerSec, ratio: nexusRun.opsPerSec / echoRun.opsPerSec,
        note: `p50 ${nexusRun.p50Us.toFixed(0)} µs, p99 ${nexusRun.p99Us.toFixed(0)} µs; goal ratio >= 0.8`,
      },
      { id: 'nexus.get.sdk.ops', name: 'Nexus secret GET through NexusClient.getSecret', value: sdkOps, unit: 'ops/s' },
    ];
  } finally {
    await echo.stop();
    await dispatcher.close();
    source.close();
    nexusSource.close();
  }
}

async function benchPut(pilot: NexusClient, budgetMs: number): Promise<BenchResult[]> {
  const WRITERS = 64;
  // baseline: bare store, group commit off → one synchronous=FULL transaction per write
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-bench-nexus-'));
  const root = RootKey.generate();
  const store = new SqliteStore({ file: path.join(dir, 'spike.db'), groupCommit: false });
  let baseOps: number;
  try {
    await store.unlock(root);
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => store.putSecret(`bench/w${w}`, VALUE)));
    let n = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      while (performance.now() - t0 < budgetMs) {
        await store.putSecret(`bench/w${w}`, VALUE);
        n++;
      }
    }));
    baseOps = (n * 1000) / (performance.now() - t0);
  } finally {
    await store.close();
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => pilot.putSecret(`bench/put/w${w}`, VALUE)));
  let n = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
    while (performance.now() - t0 < budgetMs) {
      await pilot.putSecret(`bench/put/w${w}`, VALUE);
      n++;
    }
  }));
  const nexusOps = (n * 1000) / (performance.now() - t0);
  return [
    { id: 'nexus.put.tx-per-write-baseline.ops', name: `bare SqliteStore PUT, ${WRITERS} writers, one synchronous=FULL transaction per write`, value: baseOps, unit: 'ops/s' },
    {
      id: 'nexus.put.64-writers.ops', name: `Nexus secret PUT over mTLS, ${WRITERS} concurrent SDK writers (group commit)`, value: nexusOps, unit: 'ops/s',
      baseline: baseOps, ratio: nexusOps / baseOps, note: 'goal ratio >= 5',
    },
  ];
}

/** An in-process memory-backend Nexus preloaded with `extra` policies besides the caller's. */
async function authzRun(stack: Stack, extra: number, budgetMs: number): Promise<{ get: LatencyRun; putMs: number; putCpuMs: number }> {
  const store = new MemoryStore();
  await store.putPolicy({ name: 'bench-app', spiffeIdPattern: '^spiffe://spike\\.ist/workload/bench-app$', pathPattern: '^bench/authz/.*$', permissions: ['read'] });
  for (let i = 0; i < extra; i++) {
    // a mix of shapes: literal identities, identity regexes with a prefix, path regexes
    const id = i % 3 === 0 ? `^spiffe://spike\\.ist/workload/app-${i}$` : i % 3 === 1 ? `^spiffe://spike\\.ist/team-${i % 97}/svc-[0-9]+$` : `^spiffe://tenant-${i}\\.org/.*$`;
    await store.putPolicy({ name: `p-${i}`, spiffeIdPattern: id, pathPattern: `^tenants/${i}/(db|cache)/.*$`, permissions: i % 2 === 0 ? ['read'] : ['read', 'write'] });
  }
  await store.putSecret('bench/authz/creds', VALUE);
  const nexusSource = await WorkloadX509Source.open({ endpoint: stack.socket('nexus'), timeoutMs: 15_000 });
  const appSource = await WorkloadX509Source.open({ endpoint: stack.socket('bench-app'), timeoutMs: 15_000 });
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const nexus = await startNexus({
    cfg: loadNexusConfig({ SPIKE_NEXUS_BACKEND_STORE: 'memory', SPIKE_NEXUS_TLS_PORT: '127.0.0.1:0', SPIFFE_ENDPOINT_SOCKET: stack.socket('nexus') }),
    ids: recognisers(loadTrustRoots({})),
    source: nexusSource,
    logger: createLogger({ component: 'bench-nexus', level: 'warn', destination: sink }),
    store,
  });
  const dispatcher = createMtlsDispatcher({ source: appSource, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections: 1 });
  try {
    const url = `https://localhost:${nexus.server.port}`;
    const get = await sequentialPosts(dispatcher, `${url}/v1/store/secrets?action=get`, JSON.stringify({ path: 'bench/authz/creds' }), budgetMs);
    // one policy write = validate + store + engine update (incremental, or a full reload)
    const pilotSource = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
    const pd = createMtlsDispatcher({ source: pilotSource, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections: 1 });
    const times: number[] = [];
    const cpu: number[] = [];
    try {
      // 5 warm-up writes (connection, JIT), then 25 measured; each a new policy name
      for (let i = 0; i < 30; i++) {
        const body = JSON.stringify({ name: `bench-put-${i}`, spiffeidPattern: '^spiffe://spike\\.ist/x$', pathPattern: '^x$', permissions: ['read'] });
        const t = performance.now();
        const c = process.cpuUsage();
        const r = await request(`${url}/v1/acl/policy`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, dispatcher: pd });
        await r.body.arrayBuffer();
        if (r.statusCode !== 200) throw new Error(`policy put: status ${r.statusCode}`);
        const used = process.cpuUsage(c);
        if (i >= 5) {
          times.push(performance.now() - t);
          cpu.push((used.user + used.system) / 1000);
        }
      }
    } finally {
      await pd.close();
      pilotSource.close();
    }
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    return { get, putMs: percentile(times, 50), putCpuMs: percentile(cpu, 50) };
  } finally {
    await dispatcher.close();
    await nexus.close();
    nexusSource.close();
    appSource.close();
  }
}

function engineDecisionNs(extra: number): number {
  const policies = [{ name: 'bench-app', spiffeIdPattern: '^spiffe://spike\\.ist/workload/bench-app$', pathPattern: '^bench/authz/.*$', permissions: ['read'] }];
  for (let i = 0; i < extra; i++) {
    policies.push({ name: `p-${i}`, spiffeIdPattern: i % 2 === 0 ? `^spiffe://spike\\.ist/workload/app-${i}$` : `^spiffe://spike\\.ist/team-${i % 97}/svc-[0-9]+$`, pathPattern: `^tenants/${i}/.*$`, permissions: ['read'] });
  }
  const e = new PolicyEngine();
  e.load(policies, 1);
  const N = 200_000;
  for (let i = 0; i < 1000; i++) e.allows(BENCH_APP, 'bench/authz/creds', 'read');
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) e.allows(BENCH_APP, 'bench/authz/creds', 'read');
  return Number(process.hrtime.bigint() - t) / N;
}

/** Benchmark 3 alone (issue 7 calls it for P3); `stack` must have the `bench-app` identity. */
export async function benchAuthz(stack: Stack, budgetMs: number): Promise<BenchResult[]> {
  const none = await authzRun(stack, 0, budgetMs);
  const many = await authzRun(stack, 10_000, budgetMs);
  const e0 = engineDecisionNs(0);
  const e1 = engineDecisionNs(10_000);
  return [
    { id: 'nexus.authz.get.0-policies.p50', name: 'workload GET (in-process Nexus, mTLS), caller\'s policy only — p50', value: none.get.p50Us, unit: 'µs', note: `p99 ${none.get.p99Us.toFixed(0)} µs, ${none.get.opsPerSec.toFixed(0)} ops/s` },
    {
      id: 'nexus.authz.get.10k-policies.p50', name: 'workload GET with 10,000 other policies — p50', value: many.get.p50Us, unit: 'µs',
      baseline: none.get.p50Us, ratio: many.get.p50Us / none.get.p50Us,
      note: `p99 ${many.get.p99Us.toFixed(0)} µs, ${many.get.opsPerSec.toFixed(0)} ops/s; goal ratio <= 1.2`,
    },
    { id: 'nexus.authz.engine.10k.ns', name: 'policy engine decision (warm caller cache), 10,000 policies', value: e1, unit: 'ns', baseline: e0, ratio: e1 / e0 },
    {
      id: 's.policy_write.10k', name: 'one policy write with 10,000 policies, CPU p50 (baseline: the same write with none)', value: many.putCpuMs, unit: 'ms',
      baseline: none.putCpuMs, ratio: many.putCpuMs / none.putCpuMs,
      note: `CPU of the process (in-process Nexus on the memory store + its mTLS client), which other load does not skew; wall p50 ${many.putMs.toFixed(2)} ms vs ${none.putMs.toFixed(2)} ms; 25 writes after 5 warm-up`,
    },
  ];
}

export async function benchNexusData(given?: Stack, opts: { budgetMs?: number } = {}): Promise<BenchResult[]> {
  const budgetMs = opts.budgetMs ?? 3000;
  // The bench-app identity is needed for the authz runs; a given stack must have it too.
  const stack = given ?? (await Stack.start({ identities: { 'bench-app': BENCH_APP }, nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' } }));
  try {
    const pilot = await stack.client('pilot');
    return [
      ...(await benchGet(stack, pilot, budgetMs)),
      ...(await benchPut(pilot, budgetMs)),
      ...(await benchAuthz(stack, Math.min(budgetMs, 2000))),
    ];
  } finally {
    if (given === undefined) await stack.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchNexusData()
    .then((rs) => {
      for (const r of rs) {
        process.stdout.write(`${r.id}\t${r.value.toFixed(r.value < 10 ? 2 : 0)} ${r.unit}${r.ratio !== undefined ? `\tratio ${r.ratio.toFixed(2)}` : ''}\t${r.note ?? ''}\n`);
      }
    })
    .catch((e: unknown) => {
      process.stderr.write(`bench failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
      process.exitCode = 1;
    });
}
