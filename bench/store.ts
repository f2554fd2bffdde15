/**
 * Store micro-benchmark (issue 5 acceptance, D12): sqlite PUT throughput with 64
 * concurrent writers, group commit (many writes per `synchronous=FULL` transaction)
 * versus one fsync'd transaction per write, same process, same disk, same run. Also
 * reports GET throughput on the sealed store. Goal (not an assert): ratio ≥ 5×.
 *
 * Run alone with `node dist/bench/store.js`; `bench/run.ts` can include `benchStore()`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { RootKey } from '../src/crypto/index.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import type { BenchResult } from './types.js';

const WRITERS = 64;

interface PutRun { opsPerSec: number; writes: number; transactions: number }

async function putRun(groupCommit: boolean, budgetMs: number, root: RootKey): Promise<PutRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-bench-store-'));
  const store = new SqliteStore({ file: path.join(dir, 'spike.db'), groupCommit });
  try {
    await store.unlock(root);
    const value = { username: 'admin', password: 'x'.repeat(64) };
    // Warm-up: create the paths so the measured puts are updates of existing secrets.
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => store.putSecret(`bench/w${w}`, value)));
    const s0 = store.stats();
    let writes = 0;
    const start = performance.now();
    const deadline = start + budgetMs;
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      while (performance.now() < deadline) {
        await store.putSecret(`bench/w${w}`, value);
        writes++;
      }
    }));
    const elapsed = performance.now() - start;
    const s1 = store.stats();
    return { opsPerSec: (writes * 1000) / elapsed, writes, transactions: s1.transactions - s0.transactions };
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function getRun(budgetMs: number, root: RootKey): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-bench-store-'));
  const store = new SqliteStore({ file: path.join(dir, 'spike.db') });
  try {
    await store.unlock(root);
    await Promise.all(Array.from({ length: 256 }, (_, i) => store.putSecret(`bench/g${i}`, { k: 'v'.repeat(64) })));
    let reads = 0;
    const start = performance.now();
    while (performance.now() - start < budgetMs) {
      for (let i = 0; i < 64; i++) await store.getSecret(`bench/g${(reads + i) % 256}`);
      reads += 64;
    }
    return (reads * 1000) / (performance.now() - start);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchStore(opts: { budgetMs?: number } = {}): Promise<BenchResult[]> {
  const budgetMs = opts.budgetMs ?? 3000;
  const root = RootKey.generate();
  try {
    const single = await putRun(false, budgetMs, root);
    const group = await putRun(true, budgetMs, root);
    const gets = await getRun(Math.min(budgetMs, 1500), root);
    return [
      {
        id: 'store.sqlite.put.tx-per-write.ops',
        name: `sqlite PUT, ${WRITERS} writers, one synchronous=FULL transaction per write`,
        value: single.opsPerSec,
        unit: 'ops/s',
        note: `${single.writes} writes in ${single.transactions} transactions`,
      },
      {
        id: 'store.sqlite.put.group-commit.ops',
        name: `sqlite PUT, ${WRITERS} writers, group commit (D12)`,
        value: group.opsPerSec,
        unit: 'ops/s',
        baseline: single.opsPerSec,
        ratio: group.opsPerSec / single.opsPerSec,
        note: `${group.writes} writes in ${group.transactions} transactions (avg ${(group.writes / Math.max(1, group.transactions)).toFixed(1)}/tx); goal ratio >= 5`,
      },
      {
        id: 'store.sqlite.get.ops',
        name: 'sqlite GET (sealed: HMAC lookup + 2 AEAD opens)',
        value: gets,
        unit: 'ops/s',
      },
    ];
  } finally {
    root.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchStore()
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
