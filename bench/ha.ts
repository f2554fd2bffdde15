/**
 * Several Nexus on one PostgreSQL, end to end (issue 8): throughput of real spike-nexus
 * processes over mTLS, driven by SDK clients in this process.
 * - GET and PUT with 64 concurrent workers against 1 Nexus versus 3 Nexus on ONE database
 *   (worker w talks to instance w % n only) → the scaling ratio;
 * - PUT against 1 Nexus on PostgreSQL versus 1 Nexus on SQLite (group commit), same run.
 *
 * PostgreSQL is a throw-away local server (test/helpers/postgres.ts) with fsync and
 * synchronous_commit ON, as deployed (D12); each configuration gets its own database and
 * its own stack (agent, 3 Keepers, bootstrap), started and stopped in turn so they do not
 * compete for CPU. Everything — database, Nexus processes, load generator — shares this
 * machine's cores, so the 1→3 ratio shows what extra instances buy on THIS host (on a
 * small host: little or nothing; the point of several instances there is availability).
 *
 * Run alone: `node dist/bench/ha.js [--quick]`.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { NexusClient } from '../src/sdk/index.js';
import { WorkloadX509Source } from '../src/spiffe/index.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { Stack, type StackOptions } from '../test/helpers/stack.js';
import type { BenchResult } from './types.js';

const WORKERS = 64;
const GET_PATHS = 256;
const VALUE = { username: 'admin', password: 'x'.repeat(64) };

export interface BenchHaOptions {
  /** Measuring time per figure (default 3000 ms; `quick` 1000 ms). */
  budgetMs?: number;
  quick?: boolean;
}

interface Rate {
  opsPerSec: number;
  ops: number;
  errors: number;
}

/** A stack plus one pilot client per Nexus instance (connections enough for every worker). */
async function withStack<T>(opts: StackOptions, fn: (clients: NexusClient[]) => Promise<T>): Promise<T> {
  const stack = await Stack.start({ ...opts, nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN', SPIKE_NEXUS_DB_MAX_OPEN_CONNS: '16', ...(opts.nexusEnv ?? {}) } });
  const owned: Array<{ client: NexusClient; source: WorkloadX509Source }> = [];
  try {
    for (const url of stack.nexusUrls) {
      const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
      const client = await NexusClient.connect({ urls: [url], source, env: { SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST: String(WORKERS) } });
      owned.push({ client, source });
    }
    return await fn(owned.map((o) => o.client));
  } finally {
    for (const o of owned) {
      await o.client.close().catch(() => undefined);
      o.source.close();
    }
    await stack.stop();
  }
}

/** `WORKERS` closed-loop workers, worker w on clients[w % n], for `budgetMs` after a warm-up. */
async function closedLoop(clients: NexusClient[], budgetMs: number, op: (c: NexusClient, w: number, i: number) => Promise<unknown>): Promise<Rate> {
  // warm-up: one round per worker (connections, handshakes, JIT)
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => op(clients[w % clients.length]!, w, 0)));
  let ops = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + budgetMs;
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const c = clients[w % clients.length]!;
    for (let i = 0; performance.now() < deadline; i++) {
      try {
        await op(c, w, i);
        ops++;
      } catch {
        errors++;
      }
    }
  }));
  return { opsPerSec: (ops * 1000) / (performance.now() - start), ops, errors };
}

const put = (prefix: string) => async (c: NexusClient, w: number): Promise<void> => {
  await c.putSecret(`${prefix}/w${w}`, VALUE);
};

async function measure(opts: StackOptions, budgetMs: number, withGet: boolean): Promise<{ put: Rate; get?: Rate }> {
  return withStack(opts, async (clients) => {
    const putRate = await closedLoop(clients, budgetMs, put('bench/put'));
    if (!withGet) return { put: putRate };
    await Promise.all(Array.from({ length: GET_PATHS }, (_, i) => clients[i % clients.length]!.putSecret(`bench/get/${i}`, VALUE)));
    const getRate = await closedLoop(clients, budgetMs, (c, w, i) => c.getSecret(`bench/get/${(w + i * WORKERS) % GET_PATHS}`));
    return { put: putRate, get: getRate };
  });
}

function errNote(...rs: Array<Rate | undefined>): string {
  const e = rs.reduce((a, r) => a + (r?.errors ?? 0), 0);
  return e === 0 ? '' : `; ${e} failed requests excluded`;
}

export async function benchHa(opts: BenchHaOptions = {}): Promise<BenchResult[]> {
  const budgetMs = opts.budgetMs ?? (opts.quick ? 1000 : 3000);
  let pg: TestPostgres | undefined;
  try {
    pg = await startPostgres({ database: 'bench_ha1', fsync: true });
    const db3 = await pg.createDatabase('bench_ha3');
    const one = await measure({ backend: 'postgres', databaseUrl: pg.connectionString }, budgetMs, true);
    const three = await measure({ backend: 'postgres', databaseUrl: db3, nexusCount: 3 }, budgetMs, true);
    const sqlite = await measure({ backend: 'sqlite' }, budgetMs, false);
    const host = `${os.cpus().length} CPU(s) shared by PostgreSQL, every Nexus and the load generator`;
    const get1 = one.get!;
    const get3 = three.get!;
    return [
      {
        id: 'ha.pg.get.1-nexus.ops',
        name: `GET over mTLS, ${WORKERS} workers, 1 Nexus on PostgreSQL`,
        value: get1.opsPerSec,
        unit: 'ops/s',
        note: `${host}${errNote(get1)}`,
      },
      {
        id: 'ha.pg.get.3-nexus.ops',
        name: `GET over mTLS, ${WORKERS} workers spread over 3 Nexus on one PostgreSQL`,
        value: get3.opsPerSec,
        unit: 'ops/s',
        baseline: get1.opsPerSec,
        ratio: get3.opsPerSec / get1.opsPerSec,
        note: `scaling ratio 3 vs 1 Nexus; ${host}${errNote(get3)}`,
      },
      {
        id: 'ha.pg.put.1-nexus.ops',
        name: `PUT over mTLS, ${WORKERS} writers, 1 Nexus on PostgreSQL (fsync on)`,
        value: one.put.opsPerSec,
        unit: 'ops/s',
        note: `${host}${errNote(one.put)}`,
      },
      {
        id: 'ha.pg.put.3-nexus.ops',
        name: `PUT over mTLS, ${WORKERS} writers spread over 3 Nexus on one PostgreSQL`,
        value: three.put.opsPerSec,
        unit: 'ops/s',
        baseline: one.put.opsPerSec,
        ratio: three.put.opsPerSec / one.put.opsPerSec,
        note: `scaling ratio 3 vs 1 Nexus; ${host}${errNote(three.put)}`,
      },
      {
        id: 'ha.put.pg-vs-sqlite.ops',
        name: `PUT over mTLS, ${WORKERS} writers, 1 Nexus: PostgreSQL vs SQLite`,
        value: one.put.opsPerSec,
        unit: 'ops/s',
        baseline: sqlite.put.opsPerSec,
        ratio: one.put.opsPerSec / sqlite.put.opsPerSec,
        note: `baseline: the same load on spike-nexus with SQLite (group commit), same run: ${sqlite.put.opsPerSec.toFixed(0)} ops/s${errNote(sqlite.put)}`,
      },
    ];
  } finally {
    await pg?.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchHa({ quick: process.argv.includes('--quick') })
    .then((rs) => {
      for (const r of rs) {
        const ratio = r.ratio === undefined ? '' : `  ratio ${r.ratio.toFixed(2)}× (baseline ${r.baseline?.toFixed(0)})`;
        process.stdout.write(`${r.id.padEnd(26)} ${r.value.toFixed(0).padStart(7)} ${r.unit}${ratio}\n    ${r.name}${r.note ? ` — ${r.note}` : ''}\n`);
      }
    })
    .catch((e: unknown) => {
      process.stderr.write(`bench ha failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
