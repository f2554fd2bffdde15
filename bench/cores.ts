/**
 * `cores.prototype.2v1` (issue 17, "Several cores", report only): what a second server process
 * buys on this machine, with the load generator in the same run. Two prototype servers
 * (`bench/cores-server.ts`: https mTLS under `node:cluster`, a fixed CPU cost per request)
 * run side by side, one with 1 worker and one with 2; the same closed-loop GET load (32
 * connections, this process) goes to each in ABBA order (1, 2, 2, 1 workers), each phase
 * after the same warm-up. The row is 2-worker ÷ 1-worker throughput; the note gives the
 * servers' CPU per request (primary + workers, from /proc) and the load generator's own CPU,
 * which shares the same cores.
 */
import { closedLoop, progress, row, type BenchRow, type LoadResult } from './harness.js';
import { cpuMs, merge } from './proc.js';
import type { StackBench } from './stack-bench.js';

/** SHA-256 rounds per request: about 100-150 µs of CPU here, near a warm Nexus GET's own cost. */
const ROUNDS = 60;
const CONNECTIONS = 32;

export async function benchCores(sb: StackBench): Promise<BenchRow[]> {
  const ms = sb.quick ? 2000 : 5000;
  progress(`cores prototype: starting two servers (1 and 2 workers, ${ROUNDS} SHA-256 rounds per request)`);
  const servers = await Promise.all([1, 2].map(async (n) => {
    const s = await sb.startFramed('cores-server.js', [String(n), String(ROUNDS)], /cores ready (\d+) ([\d ]+)\n/);
    return { n, port: Number(s.ready[1]), pids: (s.ready[2] ?? '').trim().split(' ').map(Number), stop: s.stop };
  }));
  const runs: Record<number, LoadResult | undefined> = {};
  const cpu: Record<number, number> = { 1: 0, 2: 0 };
  const client: Record<number, number> = { 1: 0, 2: 0 };
  const body = (): string => JSON.stringify({ path: 'bench/get/creds' });
  try {
    for (const n of [1, 2, 2, 1]) {
      const s = servers[n - 1]!;
      const origin = `https://localhost:${s.port}`;
      progress(`cores prototype, ${n} worker${n > 1 ? 's' : ''}, ${CONNECTIONS} connections, ${ms / 1000} s`);
      const d = sb.dispatcher(CONNECTIONS);
      try {
        // Warm-up on the same connections (TLS handshakes, each worker's JIT), not counted.
        await closedLoop({ dispatcher: d, origin, path: '/', body, concurrency: CONNECTIONS, durationMs: Math.min(1500, ms / 2) });
        const serverCpu = (): number => s.pids.reduce((a, p) => a + cpuMs(p), 0);
        const c0 = serverCpu();
        const u0 = process.cpuUsage();
        const r = await closedLoop({ dispatcher: d, origin, path: '/', body, concurrency: CONNECTIONS, durationMs: ms });
        const u = process.cpuUsage(u0);
        cpu[n] = (cpu[n] ?? 0) + serverCpu() - c0;
        client[n] = (client[n] ?? 0) + (u.user + u.system) / 1000;
        runs[n] = merge(runs[n], r);
      } finally {
        await d.close();
      }
    }
  } finally {
    for (const s of servers) s.stop();
  }
  const one = runs[1] as LoadResult;
  const two = runs[2] as LoadResult;
  const perReq = (n: 1 | 2, r: LoadResult, t: Record<number, number>): string => (((t[n] ?? 0) * 1000) / r.ok).toFixed(0);
  return [row('CORES', {
    id: 'cores.prototype.2v1',
    name: 'several cores: prototype server (node:cluster, fixed CPU per request), 2 workers vs 1, throughput',
    value: two.opsPerSec, unit: 'ops/s', baseline: one.opsPerSec, ratio: two.opsPerSec / one.opsPerSec,
    note: `ABBA, ${CONNECTIONS} connections, ${(2 * ms) / 1000} s each side; server CPU per request (primary + workers): ` +
      `1 worker ${perReq(1, one, cpu)} µs, 2 workers ${perReq(2, two, cpu)} µs; load generator CPU per request ` +
      `${perReq(1, one, client)} / ${perReq(2, two, client)} µs on the same cores; errors ${one.errors + two.errors}; not Nexus (see docs/performance.md)`,
  }, { on: 'ratio', op: 'report', target: 0, text: 'report only' })];
}
