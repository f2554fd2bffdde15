/**
 * P5's context rows (issue 17): the transport ceiling, 64 MiB up and back over mTLS through a
 * bare https server that pipes the body back, alternating (ABBA) with Nexus's stream encrypt
 * of the same bytes, each with the server's CPU per 64 MiB from /proc.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { row, type BenchRow } from './harness.js';
import { cpuMs } from './proc.js';
import type { StackBench } from './stack-bench.js';

/**
 * The transport ceiling for P5: 64 MiB up and back down over the same kind of mTLS
 * connection to the bare https server, which pipes the body back without any crypto of its
 * own. Nexus's stream encrypt cannot be faster than this. With `nexus` (one 64 MiB stream
 * encrypt through Nexus, answering the bytes it got back) the two alternate in ABBA order,
 * so drift in the machine's load hits both alike; each figure is the best of 2 (quick) or 4
 * runs after one uncounted full-size run each, and the server CPU per run (from /proc,
 * server process only) is noted beside it.
 */
export async function p5Ceiling(sb: StackBench, nexus?: (data: Buffer) => Promise<number>): Promise<BenchRow[]> {
  const size = 64 * 2 ** 20;
  const data = randomBytes(size);
  const echo = await sb.startEcho();
  const d = sb.dispatcher(1);
  const best = { echo: Infinity, nexus: Infinity };
  const cpu = { echo: Infinity, nexus: Infinity };
  try {
    const once = async (buf: Buffer): Promise<number> => {
      const r = await d.request({ origin: `https://localhost:${echo.port}`, path: '/stream', method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: buf });
      let n = 0;
      for await (const c of r.body) n += (c as Buffer).length;
      if (r.statusCode !== 200 || n !== buf.length) throw new Error(`stream echo returned ${r.statusCode}, ${n} bytes`);
      return n;
    };
    // Warm-up: one full-size run each, not counted (a fresh stream path in Nexus spent its
    // first 64 MiB runs compiling and collecting: 550-780 ms of CPU against 200-250 later).
    await once(data);
    if (nexus !== undefined) await nexus(data);
    const runs = sb.quick ? 2 : 4;
    for (let i = 0; i < runs; i++) {
      const order = nexus === undefined ? (['echo'] as const) : i % 2 === 0 ? (['echo', 'nexus'] as const) : (['nexus', 'echo'] as const);
      for (const t of order) {
        const pid = t === 'echo' ? echo.pid : sb.stack.pid('nexus');
        const c0 = pid === undefined ? Number.NaN : cpuMs(pid);
        const t0 = performance.now();
        if (t === 'echo') await once(data);
        else await (nexus as (data: Buffer) => Promise<number>)(data);
        best[t] = Math.min(best[t], performance.now() - t0);
        if (pid !== undefined) cpu[t] = Math.min(cpu[t], cpuMs(pid) - c0);
      }
    }
  } finally {
    await d.close();
    echo.stop();
  }
  const mibPerS = (ms: number): number => size / 2 ** 20 / (ms / 1000);
  const rows = [row('P5', {
    id: 'p5.transport-ceiling.64mib', name: '64 MiB up and back over mTLS to a bare https server that pipes it back (no service crypto)',
    value: mibPerS(best.echo), unit: 'MiB/s',
    note: `context for P5: the most any service that receives and returns the bytes over mTLS can reach here; server CPU ${cpu.echo} ms per 64 MiB`,
  })];
  if (nexus !== undefined) {
    rows.push(row('P5', {
      id: 'p5.stream.vs_ceiling', name: 'stream encrypt through Nexus compared with that transport ceiling',
      value: mibPerS(best.nexus), unit: 'MiB/s', baseline: mibPerS(best.echo), ratio: best.echo / best.nexus,
      note: `runs alternating with the row above (ABBA); server CPU per 64 MiB: Nexus ${cpu.nexus} ms, echo ${cpu.echo} ms (issue 17 goal)`,
    }, { on: 'ratio', op: '>=', target: 0.9, text: '≥ 0.9×' }));
  }
  return rows;
}
