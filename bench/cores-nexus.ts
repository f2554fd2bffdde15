/**
 * `cores.nexus.{sqlite,pg}.{get,put}.2v1` (issue 17, "Several cores", report only): real
 * spike-nexus with SPIKE_NEXUS_WORKERS=1 against the same with 2, side by side, on SQLite and
 * on PostgreSQL. One whole stack (agent, 3 Keepers, bootstrap) per configuration, both up at
 * once (PostgreSQL: one throw-away server, fsync on, a database each); the same closed-loop load from SDK
 * clients in this process (GET: 32 loops on 32 connections; PUT: 64 writers) goes to each in
 * ABBA order (1, 2, 2, 1 workers) after a warm-up. The rows are 2-worker ÷ 1-worker
 * throughput; the notes give each Nexus's CPU per request (primary + workers, from /proc) and
 * the load generator's own, which shares the same cores with PostgreSQL.
 *
 * Run alone: `node dist/bench/cores-nexus.js [--quick]`.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { NexusClient } from '../src/sdk/index.js';
import { WorkloadX509Source } from '../src/spiffe/index.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { Stack } from '../test/helpers/stack.js';
import { progress } from './harness.js';
import { cpuMs } from './proc.js';
import type { BenchResult } from './types.js';

const GET_LOOPS = 32;
const PUT_LOOPS = 64;
const GET_PATHS = 256;
const VALUE = { username: 'admin', password: 'x'.repeat(64) };

interface Side {
  workers: number;
  stack: Stack;
  source: WorkloadX509Source;
  client: NexusClient;
}

interface Tally { ops: number; errors: number; ms: number; serverCpuMs: number; clientCpuMs: number }

const empty = (): Tally => ({ ops: 0, errors: 0, ms: 0, serverCpuMs: 0, clientCpuMs: 0 });

/** Nexus's processes: the primary and, with workers, its children. */
function nexusPids(stack: Stack): number[] {
  const pid = stack.nexusProcess()?.pid;
  if (pid === undefined) throw new Error('spike-nexus is not running');
  const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [pid, ...kids];
}

async function openSide(pg: TestPostgres | undefined, workers: number): Promise<Side> {
  const db = pg ? await pg.createDatabase(`bench_cores_${workers}`) : undefined;
  const stack = await Stack.start({
    ...(db ? { backend: 'postgres' as const, databaseUrl: db } : { backend: 'sqlite' as const }),
    nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN', SPIKE_NEXUS_WORKERS: String(workers), SPIKE_HTTP_SERVER_MAX_HANDSHAKES_PER_SOURCE: '256' },
    keeperEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' },
  });
  try {
    const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
    const client = await NexusClient.connect({ urls: [stack.nexusUrl], source, env: { SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST: String(PUT_LOOPS) } });
    // Every worker ready (each recovers the root key itself): a round of requests on every connection succeeds.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const r = await Promise.allSettled(Array.from({ length: PUT_LOOPS }, (_, i) => client.putSecret(`bench/get/${i % GET_PATHS}`, VALUE)));
      if (r.every((x) => x.status === 'fulfilled')) break;
      if (Date.now() > deadline) throw new Error(`${workers} workers: not every worker became ready`);
      await new Promise((res) => setTimeout(res, 200));
    }
    await Promise.all(Array.from({ length: GET_PATHS }, (_, i) => client.putSecret(`bench/get/${i}`, VALUE)));
    return { workers, stack, source, client };
  } catch (e) {
    await stack.stop();
    throw e;
  }
}

/** `loops` closed loops for `ms` after a warm-up (half as long, at least 1.5 s: every worker's JIT); adds to `t`. */
async function load(side: Side, loops: number, ms: number, op: (c: NexusClient, w: number, i: number) => Promise<unknown>, t: Tally): Promise<void> {
  const run = async (budget: number): Promise<{ ops: number; errors: number }> => {
    let ops = 0;
    let errors = 0;
    const deadline = performance.now() + budget;
    await Promise.all(Array.from({ length: loops }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        try {
          await op(side.client, w, i);
          ops++;
        } catch {
          errors++;
        }
      }
    }));
    return { ops, errors };
  };
  await run(Math.max(1500, ms / 2));
  const pids = nexusPids(side.stack);
  const cpu0 = pids.reduce((a, p) => a + cpuMs(p), 0);
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await run(ms);
  t.ms += performance.now() - t0;
  const u = process.cpuUsage(u0);
  t.serverCpuMs += pids.reduce((a, p) => a + cpuMs(p), 0) - cpu0;
  t.clientCpuMs += (u.user + u.system) / 1000;
  t.ops += r.ops;
  t.errors += r.errors;
}

function rowsOf(backend: Backend, kind: 'GET' | 'PUT', loops: number, one: Tally, two: Tally, ms: number): BenchResult {
  const rate = (t: Tally): number => (t.ops * 1000) / t.ms;
  const us = (x: number, t: Tally): string => ((x * 1000) / Math.max(1, t.ops)).toFixed(0);
  return {
    id: `cores.nexus.${backend === 'postgres' ? 'pg' : 'sqlite'}.${kind.toLowerCase()}.2v1`,
    name: `several cores: spike-nexus on ${backend === 'postgres' ? 'PostgreSQL' : 'SQLite'}, ${kind}, 2 workers vs 1, throughput`,
    value: rate(two), unit: 'ops/s', baseline: rate(one), ratio: rate(two) / rate(one),
    note: `ABBA, ${loops} loops, ${(2 * ms) / 1000} s each side; Nexus CPU per request (primary + workers): 1 worker ` +
      `${us(one.serverCpuMs, one)} µs, 2 workers ${us(two.serverCpuMs, two)} µs; load generator ${us(one.clientCpuMs, one)} / ` +
      `${us(two.clientCpuMs, two)} µs; ${backend === 'postgres' ? 'PostgreSQL and ' : ''}the load generator share${backend === 'postgres' ? '' : 's'} the same cores; errors ${one.errors + two.errors}`,
  };
}

type Backend = 'sqlite' | 'postgres';

async function measureBackend(backend: Backend, ms: number): Promise<BenchResult[]> {
  let pg: TestPostgres | undefined;
  const sides: Side[] = [];
  try {
    if (backend === 'postgres') pg = await startPostgres({ database: 'bench_cores', fsync: true });
    progress(`cores: two spike-nexus stacks on ${backend} (1 and 2 workers)`);
    for (const n of [1, 2]) sides.push(await openSide(pg, n));
    const get = { 1: empty(), 2: empty() } as Record<number, Tally>;
    const put = { 1: empty(), 2: empty() } as Record<number, Tally>;
    for (const n of [1, 2, 2, 1]) {
      const side = sides[n - 1]!;
      progress(`cores: spike-nexus on ${backend}, ${n} worker${n > 1 ? 's' : ''}: GET ${GET_LOOPS} loops, PUT ${PUT_LOOPS} writers, ${ms / 1000} s each`);
      await load(side, GET_LOOPS, ms, (c, w, i) => c.getSecret(`bench/get/${(w + i * GET_LOOPS) % GET_PATHS}`), get[n]!);
      await load(side, PUT_LOOPS, ms, (c, w) => c.putSecret(`bench/put/w${w}`, VALUE), put[n]!);
    }
    return [rowsOf(backend, 'GET', GET_LOOPS, get[1]!, get[2]!, ms), rowsOf(backend, 'PUT', PUT_LOOPS, put[1]!, put[2]!, ms)];
  } finally {
    for (const s of sides) {
      await s.client.close().catch(() => undefined);
      s.source.close();
      await s.stack.stop();
    }
    await pg?.stop();
  }
}

export async function benchCoresNexus(opts: { quick?: boolean } = {}): Promise<BenchResult[]> {
  const ms = opts.quick ? 2000 : 5000;
  return [...(await measureBackend('sqlite', ms)), ...(await measureBackend('postgres', ms))];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchCoresNexus({ quick: process.argv.includes('--quick') })
    .then((rs) => {
      for (const r of rs) process.stdout.write(`${r.id} ${r.value.toFixed(0)} ${r.unit} ratio ${r.ratio?.toFixed(2)}× (baseline ${r.baseline?.toFixed(0)})\n    ${r.note ?? ''}\n`);
    })
    .catch((e: unknown) => {
      process.stderr.write(`bench cores-nexus failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    });
}
