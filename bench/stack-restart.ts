/**
 * The stack benches that restart Nexus (`StackBench`'s stack): P4, kill -9 → start → first 200
 * answer with 3 Keepers up, and P6, Nexus's RSS holding many secrets after a restart and an
 * idle Keeper's RSS.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { progress, row, type BenchRow } from './harness.js';
import { anonMiB, dbSizeMiB, rssMiB } from './proc.js';
import { GET, GET_PATH, SECRETS, VALUE, type StackBench } from './stack-bench.js';

/** Polls GET until Nexus answers 200 (503 before it has its root key). */
async function untilReady(sb: StackBench, d: Dispatcher, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const r = await d.request({ origin: sb.origin, path: GET, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: GET_PATH }) });
      await r.body.arrayBuffer();
      if (r.statusCode === 200) return;
    } catch {
      /* not listening yet, or the old connection died */
    }
    if (performance.now() > deadline) throw new Error(`nexus not ready within ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

/** kill -9, start, wait for the first 200; returns [ready ms, listening ms]. */
export async function restartNexus(sb: StackBench, d: Dispatcher): Promise<[number, number]> {
  await sb.stack.killNexus('SIGKILL');
  const t0 = performance.now();
  await sb.stack.startNexus();
  const t1 = performance.now();
  await untilReady(sb, d, 30_000);
  return [performance.now() - t0, t1 - t0];
}

/** P4: Nexus kill -9 → start → first 200 answer, 3 Keepers up, median of 5. */
export async function p4(sb: StackBench): Promise<BenchRow[]> {
  const d = sb.dispatcher(1);
  const ready: number[] = [];
  const listen: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      progress(`P4 restart ${i + 1}/5`);
      const [r, l] = await restartNexus(sb, d);
      ready.push(r);
      listen.push(l);
    }
  } finally {
    await d.close();
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return [row('P4', {
    id: 'p4.restart-ready.ms', name: 'Nexus kill -9 → start → ready (3 Keepers up), median of 5',
    value: med(ready), unit: 'ms',
    note: `all: ${ready.map((x) => x.toFixed(0)).join(', ')} ms; of which process start → listening (median) ${med(listen).toFixed(0)} ms; ready = first 200 to a secret GET`,
  }, { on: 'value', op: '<=', target: 1500, text: '≤ 1.5 s' })];
}

/**
 * P6: RSS of Nexus holding 100,000 secrets (10,000 in a quick run) written through the API,
 * after a restart and a few reads; RSS of an idle Keeper.
 */
export async function p6(sb: StackBench): Promise<BenchRow[]> {
  const total = sb.quick ? 10_000 : 100_000;
  const d = sb.dispatcher(64);
  let writeRate: number;
  let rssLoaded: number;
  try {
    progress(`P6 writing ${total} secrets through the API (64 writers)`);
    let next = 0;
    let failed = 0;
    const t0 = performance.now();
    let lastTick = t0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < total) {
        const i = next++;
        const r = await d.request({ origin: sb.origin, path: SECRETS, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: `bench/rss/${i}`, values: VALUE }) });
        await r.body.arrayBuffer();
        if (r.statusCode !== 200) failed++;
        if (performance.now() - lastTick > 10_000) {
          lastTick = performance.now();
          progress(`P6 … ${next} / ${total}`);
        }
      }
    }));
    if (failed > 0) throw new Error(`${failed} of ${total} PUTs failed`);
    writeRate = (total * 1000) / (performance.now() - t0);
    rssLoaded = rssMiB(sb.stack.pid('nexus'));
    progress(`P6 restart Nexus, read a few secrets, read RSS`);
    await restartNexus(sb, d);
    for (let i = 0; i < 10; i++) {
      const r = await d.request({ origin: sb.origin, path: GET, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: `bench/rss/${(i * 9973) % total}` }) });
      await r.body.arrayBuffer();
      if (r.statusCode !== 200) throw new Error(`GET answered ${r.statusCode}`);
    }
    await new Promise((res) => setTimeout(res, 500));
  } finally {
    await d.close();
  }
  const nexusRss = rssMiB(sb.stack.pid('nexus'));
  const keeperRss = rssMiB(sb.stack.pid('keeper-1'));
  const keeperAnon = anonMiB(sb.stack.pid('keeper-1'));
  const dbMiB = dbSizeMiB(sb.stack.dir);
  return [
    row('P6', {
      id: 'p6.nexus.rss.mib', name: `RSS of Nexus holding ${total.toLocaleString('en')} secrets (after restart + 10 reads)`,
      value: nexusRss, unit: 'MiB',
      note: `${sb.quick ? 'quick run: 10,000 secrets, not 100,000; ' : ''}written through the API (64 writers, ${writeRate.toFixed(0)} PUT/s); ` +
        `RSS right after the writes, before the restart: ${rssLoaded.toFixed(0)} MiB; SQLite files ${dbMiB.toFixed(0)} MiB`,
    }, { on: 'value', op: '<=', target: 200, text: '≤ 200 MB' }),
    row('P6', {
      id: 'p6.keeper.rss', name: 'RSS of an idle Keeper (holding its share)', value: keeperRss, unit: 'MiB',
      note: `keeper-1, after the whole run; of which private (anonymous) ${keeperAnon.toFixed(1)} MiB, the rest file-backed pages of the node binary shared by every node process`,
    }, { on: 'value', op: '<=', target: 60, text: '≤ 60 MB' }),
  ];
}
