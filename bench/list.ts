/**
 * `s.list.prefix.100k` (issue 18 §6): a secret list of ONE prefix (100 keys) among 100,000
 * secrets vs the same list among 1,000, same run, same machine. Goal ≤ 2×: the cost of a
 * list follows what it returns, not the size of the store.
 *
 * Each store is a real sealed SQLite file filled with store-level puts (group commit, far
 * faster than 100,000 API calls), closed, then opened again and unlocked like a restarting
 * Nexus: the path index is built from the file (that first build is reported: it is what
 * EVERY list cost before the index, one decryption per stored path). The list is then
 * served over mTLS by an in-process Nexus per store (the `pilot` superuser, sequential
 * requests on one warm connection), measured A B B A so warm-up and load drift weigh on both
 * sides alike. Also reported: SPIKE's `{}` list of everything among 100,000.
 *
 * Run alone: `node dist/bench/list.js` (starts its own stack for the SVIDs).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { loadTrustRoots, recognisers } from '../src/protocol/index.js';
import { loadNexusConfig } from '../src/config/index.js';
import { RootKey } from '../src/crypto/index.js';
import { createLogger } from '../src/lib/log.js';
import { startNexus } from '../src/nexus/server.js';
import { SpiffeId } from '../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../src/spiffe/index.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { Stack } from '../test/helpers/stack.js';
import { sequentialPosts, type LatencyRun } from './nexus-data.js';
import type { BenchResult } from './types.js';

const NEXUS_ID = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
const PER_PREFIX = 100;
const TARGET = 'tenants/t00007/';

/** One prepared Nexus over a filled store, ready to be measured. */
interface Prepared {
  url: string;
  dispatcher: ReturnType<typeof createMtlsDispatcher>;
  buildMs: number;
  fillS: number;
  close(): Promise<void>;
}

/** A sealed SQLite file holding `total` secrets, `PER_PREFIX` under each `tenants/tNNNNN/`. */
async function fill(file: string, root: RootKey, total: number): Promise<void> {
  const store = new SqliteStore({ file });
  try {
    await store.unlock(root);
    const BATCH = 512;
    for (let i = 0; i < total; i += BATCH) {
      await Promise.all(Array.from({ length: Math.min(BATCH, total - i) }, (_, j) => {
        const n = i + j;
        const p = `tenants/t${String(n % (total / PER_PREFIX)).padStart(5, '0')}/s${String(Math.floor(n / (total / PER_PREFIX))).padStart(3, '0')}`;
        return store.putSecret(p, { k: 'v' });
      }));
    }
  } finally {
    await store.close();
  }
}

async function prepare(stack: Stack, total: number): Promise<Prepared> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-bench-list-'));
  const root = RootKey.generate();
  const file = path.join(dir, 'spike.db');
  const f0 = performance.now();
  await fill(file, root, total);
  const fillS = (performance.now() - f0) / 1000;
  // A restarting Nexus: open the file, unlock (the index build starts), first list waits for it.
  const store = new SqliteStore({ file });
  const b0 = performance.now();
  await store.unlock(root);
  await store.listSecretPathPage({ prefix: TARGET, limit: 1 });
  const buildMs = performance.now() - b0;
  const nexusSource = await WorkloadX509Source.open({ endpoint: stack.socket('nexus'), timeoutMs: 15_000 });
  const pilotSource = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  // memory config (no Keepers: the key is already in the store), the sealed SQLite store as its store
  const nexus = await startNexus({
    cfg: loadNexusConfig({ SPIKE_NEXUS_BACKEND_STORE: 'memory', SPIKE_NEXUS_TLS_PORT: '127.0.0.1:0', SPIFFE_ENDPOINT_SOCKET: stack.socket('nexus') }),
    ids: recognisers(loadTrustRoots({})),
    source: nexusSource,
    logger: createLogger({ component: 'bench-nexus', level: 'warn', destination: sink }),
    store,
  });
  const dispatcher = createMtlsDispatcher({ source: pilotSource, authorizeServer: authorizeIf((id) => id.equals(NEXUS_ID)), connections: 1 });
  const url = `https://localhost:${nexus.server.port}/v1/store/secrets?action=list`;
  const close = async (): Promise<void> => {
    await dispatcher.close();
    await nexus.close(); // closes the store
    nexusSource.close();
    pilotSource.close();
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const check = await request(url, { method: 'POST', body: JSON.stringify({ prefix: TARGET }), headers: { 'content-type': 'application/json' }, dispatcher });
    const keys = ((await check.body.json()) as { keys: string[] }).keys;
    if (keys.length !== PER_PREFIX) throw new Error(`expected ${PER_PREFIX} keys under the prefix, got ${keys.length}`);
  } catch (e) {
    await close();
    throw e;
  }
  return { url, dispatcher, buildMs, fillS, close };
}

/** Median of 7 lists of everything (SPIKE's `{}`). */
async function listAllMs(p: Prepared): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    const r = await request(p.url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, dispatcher: p.dispatcher });
    await r.body.arrayBuffer();
    times.push(performance.now() - t);
  }
  return times.sort((x, y) => x - y)[3] as number;
}

const mean = (a: LatencyRun, b: LatencyRun, k: 'p50Us' | 'p99Us' | 'opsPerSec'): number => (a[k] + b[k]) / 2;

export async function benchList(stack: Stack, opts: { quick?: boolean } = {}): Promise<BenchResult[]> {
  const budgetMs = opts.quick ? 1000 : 3000;
  const big = opts.quick ? 20_000 : 100_000;
  const smallP = await prepare(stack, 1000);
  let largeP: Prepared | undefined;
  let small: [LatencyRun, LatencyRun];
  let large: [LatencyRun, LatencyRun];
  let allMs: number;
  try {
    largeP = await prepare(stack, big);
    // A B B A, each half the budget: load drift and warm-up weigh on both sides alike.
    const body = JSON.stringify({ prefix: TARGET });
    const a1 = await sequentialPosts(smallP.dispatcher, smallP.url, body, budgetMs / 2);
    const b1 = await sequentialPosts(largeP.dispatcher, largeP.url, body, budgetMs / 2);
    const b2 = await sequentialPosts(largeP.dispatcher, largeP.url, body, budgetMs / 2);
    const a2 = await sequentialPosts(smallP.dispatcher, smallP.url, body, budgetMs / 2);
    small = [a1, a2];
    large = [b1, b2];
    allMs = await listAllMs(largeP);
  } finally {
    await smallP.close();
    await largeP?.close();
  }
  const sp50 = mean(small[0], small[1], 'p50Us');
  const lp50 = mean(large[0], large[1], 'p50Us');
  const { buildMs, fillS } = largeP;
  const n = big.toLocaleString('en');
  return [
    {
      id: 's.list.prefix.1k', name: `list of one prefix (${PER_PREFIX} keys) among 1,000 secrets, p50`, value: sp50, unit: 'µs',
      note: `mean of two runs (A B B A): p50 ${small[0].p50Us.toFixed(0)} / ${small[1].p50Us.toFixed(0)} µs, p99 ${mean(small[0], small[1], 'p99Us').toFixed(0)} µs, ${mean(small[0], small[1], 'opsPerSec').toFixed(0)} lists/s`,
    },
    {
      id: 's.list.prefix.100k', name: `list of one prefix (${PER_PREFIX} keys) among ${n} secrets, p50`, value: lp50, unit: 'µs',
      baseline: sp50, ratio: lp50 / sp50,
      note: `${opts.quick ? 'quick run: 20,000 secrets, not 100,000; ' : ''}mean of two runs: p50 ${large[0].p50Us.toFixed(0)} / ${large[1].p50Us.toFixed(0)} µs, p99 ${mean(large[0], large[1], 'p99Us').toFixed(0)} µs, ${mean(large[0], large[1], 'opsPerSec').toFixed(0)} lists/s; baseline: the row above`,
    },
    {
      id: 's.list.index-build.100k', name: `path index build at start, ${n} secrets (what every list cost before the index)`, value: buildMs, unit: 'ms',
      note: `decrypts each path once, in chunks that yield; store filled in ${fillS.toFixed(0)} s (store-level puts)`,
    },
    { id: 's.list.all.100k', name: `SPIKE's list of everything ({}) among ${n} secrets, median of 7`, value: allMs, unit: 'ms' },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  (async () => {
    const stack = await Stack.start({ nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' } });
    try {
      for (const r of await benchList(stack, { quick: process.argv.includes('--quick') })) {
        process.stdout.write(`${r.id}\t${r.value.toFixed(r.value < 10 ? 2 : 0)} ${r.unit}${r.ratio !== undefined ? `\tratio ${r.ratio.toFixed(2)}` : ''}\t${r.note ?? ''}\n`);
      }
    } finally {
      await stack.stop();
    }
  })().catch((e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
    process.exitCode = 1;
  });
}
