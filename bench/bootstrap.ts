/**
 * Issue 4 benchmark: Bootstrap end to end — from `spike-bootstrap -init` starting (agent,
 * three empty Keepers and a listening Nexus already up) until Nexus serves with the new
 * key. Median of `runs` fresh stacks. Goal ≤ 2 s on this machine (report, not an assert).
 */
import { performance } from 'node:perf_hooks';
import { Stack } from '../test/helpers/stack.js';
import type { BenchResult } from './types.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchBootstrap(runs = 3): Promise<BenchResult[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const stack = await Stack.start({ bootstrap: false });
    try {
      const t0 = performance.now();
      const r = await stack.runBootstrap();
      if (r.code !== 0) throw new Error(`bootstrap failed: ${r.stderr}`);
      await stack.waitReady(30_000);
      times.push(performance.now() - t0);
    } finally {
      await stack.stop();
    }
  }
  return [{
    id: 'bootstrap.e2e.ms',
    name: `Bootstrap end to end (median of ${runs}; goal ≤ 2000 ms)`,
    value: Math.round(median(times)),
    unit: 'ms',
    note: `runs: ${times.map((t) => Math.round(t)).join(', ')} ms`,
  }];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchBootstrap(), null, 2));
}
