/**
 * `postgres` backend benchmark (issue 8), on a throw-away local PostgreSQL server
 * (test/helpers/postgres.ts; fsync on, synchronous_commit on — D12 as deployed):
 * - PUT throughput with 64 concurrent writers: postgres (one store instance) versus
 *   sqlite with group commit, same machine, same run;
 * - PUT and GET throughput with the same 64 workers spread over 1 versus 3 store
 *   instances on ONE database (the store-level half of "several Nexus on one database";
 *   all instances share this one Node process, so it measures the database and pool
 *   side, not extra Nexus CPUs).
 *
 * Run alone with `node dist/bench/store-postgres.js`; `bench/run.ts` can include
 * `benchStorePostgres()`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { RootKey } from '../src/crypto/index.js';
import { openPostgresStore, type PostgresStore } from '../src/store/postgres/store.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import type { Store } from '../src/store/types.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import type { BenchResult } from './types.js';

const WORKERS = 64;
const VALUE = { username: 'admin', password: 'x'.repeat(64) };

/** 64 workers, worker w on store w % n, each updating its own path until the budget ends. */
async function putLoop(stores: Store[], prefix: string, budgetMs: number): Promise<{ opsPerSec: number; ops: number }> {
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => stores[w % stores.length]!.putSecret(`${prefix}/w${w}`, VALUE)));
  let ops = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const s = stores[w % stores.length]!;
    while (performance.now() < deadline) {
      await s.putSecret(`${prefix}/w${w}`, VALUE);
      ops++;
    }
  }));
  return { opsPerSec: (ops * 1000) / (performance.now() - start), ops };
}

async function getLoop(stores: Store[], prefix: string, budgetMs: number): Promise<{ opsPerSec: number; ops: number }> {
  const paths = Array.from({ length: 256 }, (_, i) => `${prefix}/g${i}`);
  await Promise.all(paths.map((p, i) => stores[i % stores.length]!.putSecret(p, VALUE)));
  let ops = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const s = stores[w % stores.length]!;
    for (let i = w; performance.now() < deadline; i += WORKERS) {
      await s.getSecret(paths[i % paths.length]!);
      ops++;
    }
  }));
  return { opsPerSec: (ops * 1000) / (performance.now() - start), ops };
}

async function sqlitePut(root: RootKey, budgetMs: number): Promise<{ opsPerSec: number; ops: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-bench-pgvs-'));
  const store = new SqliteStore({ file: path.join(dir, 'spike.db') });
  try {
    await store.unlock(root);
    return await putLoop([store], 'bench/sqlite', budgetMs);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function withInstances<T>(url: string, n: number, root: RootKey, fn: (s: PostgresStore[]) => Promise<T>): Promise<T> {
  const stores: PostgresStore[] = [];
  try {
    for (let i = 0; i < n; i++) stores.push(await openPostgresStore({ connectionString: url }));
    for (const s of stores) await s.unlock(root);
    return await fn(stores);
  } finally {
    for (const s of stores) await s.close();
  }
}

export async function benchStorePostgres(opts: { budgetMs?: number } = {}): Promise<BenchResult[]> {
  const budgetMs = opts.budgetMs ?? 3000;
  const root = RootKey.generate();
  let srv: TestPostgres | undefined;
  try {
    srv = await startPostgres({ database: 'bench' });
    const url = srv.connectionString;
    const sqlite = await sqlitePut(root, budgetMs);
    const put1 = await withInstances(url, 1, root, (s) => putLoop(s, 'bench/p1', budgetMs));
    const put3 = await withInstances(url, 3, root, (s) => putLoop(s, 'bench/p3', budgetMs));
    const get1 = await withInstances(url, 1, root, (s) => getLoop(s, 'bench/r1', Math.min(budgetMs, 2000)));
    const get3 = await withInstances(url, 3, root, (s) => getLoop(s, 'bench/r3', Math.min(budgetMs, 2000)));
    const pool = 'pool 10 connections per instance (SPIKE_NEXUS_DB_MAX_OPEN_CONNS default)';
    return [
      {
        id: 'store.postgres.put.ops',
        name: `postgres PUT, ${WORKERS} writers, 1 instance (row lock + commit per write)`,
        value: put1.opsPerSec,
        unit: 'ops/s',
        baseline: sqlite.opsPerSec,
        ratio: put1.opsPerSec / sqlite.opsPerSec,
        note: `baseline: sqlite PUT with group commit, ${WORKERS} writers, same run (${sqlite.opsPerSec.toFixed(0)} ops/s); ${pool}`,
      },
      {
        id: 'store.postgres.put.3-instances.ops',
        name: `postgres PUT, ${WORKERS} writers over 3 instances on one database`,
        value: put3.opsPerSec,
        unit: 'ops/s',
        baseline: put1.opsPerSec,
        ratio: put3.opsPerSec / put1.opsPerSec,
        note: `baseline: 1 instance; one Node process, local server, ${pool}`,
      },
      {
        id: 'store.postgres.get.ops',
        name: `postgres GET, ${WORKERS} readers, 1 instance (one statement + 2 AEAD opens)`,
        value: get1.opsPerSec,
        unit: 'ops/s',
      },
      {
        id: 'store.postgres.get.3-instances.ops',
        name: `postgres GET, ${WORKERS} readers over 3 instances on one database`,
        value: get3.opsPerSec,
        unit: 'ops/s',
        baseline: get1.opsPerSec,
        ratio: get3.opsPerSec / get1.opsPerSec,
        note: 'baseline: 1 instance; one Node process',
      },
    ];
  } finally {
    await srv?.stop();
    root.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchStorePostgres()
    .then((rs) => {
      for (const r of rs) {
        process.stdout.write(`${r.id}\t${r.value.toFixed(0)} ${r.unit}${r.ratio !== undefined ? `\tratio ${r.ratio.toFixed(2)}` : ''}\t${r.note ?? ''}\n`);
      }
    })
    .catch((e: unknown) => {
      process.stderr.write(`bench failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
      process.exitCode = 1;
    });
}
