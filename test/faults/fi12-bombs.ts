/**
 * FI-12, body and JSON bombs, black-box: 20 verified clients of an identity allowed to write
 * (so Nexus reads their bodies) send, five of each, over and over on fresh connections:
 * a 64 MiB `Content-Length` body streamed as fast as Nexus takes it, an endless chunked body,
 * JSON nested 100,000 deep, and an object of 200,000 members (within the 1 MiB body cap).
 * Meanwhile a warm client reads one secret every 10 ms on its own connection. Pass: every
 * attack request that gets an answer gets 400, 408 or 413 (never 2xx or 5xx), the warm
 * client's p99 is under 10 ms, Nexus's RSS stays under 300 MB, and Nexus is alive.
 */
import { Worker } from 'node:worker_threads';
import { Stack } from '../helpers/stack.js';
import { rawClient } from '../e2e/secrets-helpers.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';
import { criterion, eventLoopP99Ms, loadavg, progress, quantile, rssKiB, sleep, NEXUS_ENV, WARN_LOGS, type RunOptions, type ScenarioResult } from './shared.js';

const BOMBER = 'spiffe://spike.ist/workload/bomber';

export async function runFi12(opts: RunOptions): Promise<ScenarioResult> {
  const id = 'FI-12';
  const seconds = opts.long ? 60 : 20;
  progress(`${id}: starting the stack`);
  const stack = await Stack.start({ identities: { bomber: BOMBER }, ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  try {
    const pilot = await rawClient(stack, 'pilot');
    const warm = await rawClient(stack, 'pilot');
    const pol = await pilot.post('/v1/acl/policy', { name: 'bomber', spiffeidPattern: `^${BOMBER.replace(/\./g, '\\.')}$`, pathPattern: '^bomb/.*$', permissions: ['write'] });
    if (pol.status !== 200) throw new Error(`policy: ${pol.status} ${pol.body}`);
    await pilot.post('/v1/store/secrets', { path: 'warm/x', values: { v: 'x' } });
    const source = await WorkloadX509Source.open({ endpoint: stack.socket('bomber'), timeoutMs: 15_000 });
    const svid = source.getX509Svid();
    const port = Number(new URL(stack.nexusUrl).port);
    const pid = stack.pid('nexus')!;
    const idleRss = rssKiB(pid) / 1024;
    for (let i = 0; i < 50; i++) await warm.post('/v1/store/secrets?action=get', { path: 'warm/x' }); // warm
    await eventLoopP99Ms(stack.nexusOpsUrl()); // starts a window
    progress(`${id}: 20 bombers and a warm client for ${seconds} s`);
    const stopAt = Date.now() + seconds * 1000;
    const worker = new Worker(new URL('./fi12-bomber.js', import.meta.url), {
      workerData: {
        port, seconds, clients: 20, cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
        ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
      },
    });
    const bombed = new Promise<{ outcomes: Record<string, number>; attacks: number; bytes: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const latencies: number[] = [];
    let warmFailures = 0;
    let peakRss = idleRss;
    const loopP99: number[] = [];
    const warmLoop = (async () => {
      while (Date.now() < stopAt) {
        const t0 = performance.now();
        const r = await warm.post('/v1/store/secrets?action=get', { path: 'warm/x' });
        latencies.push(performance.now() - t0);
        if (r.status !== 200) warmFailures++;
        await sleep(10);
      }
    })();
    const watch = (async () => {
      while (Date.now() < stopAt) {
        await sleep(1000);
        peakRss = Math.max(peakRss, rssKiB(pid) / 1024);
        loopP99.push(await eventLoopP99Ms(stack.nexusOpsUrl()));
      }
    })();
    await Promise.all([warmLoop, watch]);
    const { outcomes: counted, attacks, bytes } = await bombed;
    const outcomes = new Map(Object.entries(counted));
    source.close();
    await pilot.close();
    await warm.close();
    const bad = [...outcomes.entries()].filter(([k]) => !/ (400|408|413)$/.test(k));
    const p99 = quantile([...latencies], 0.99);
    return {
      id,
      criteria: [
        criterion('every answered attack request 400/408/413', bad.every(([k]) => !/ \d{3}$/.test(k)) && attacks > 0,
          [...outcomes.entries()].sort().map(([k, n]) => `${k}: ${n}`).join(', ')),
        criterion('warm client p99 < 10 ms, every read 200', p99 < 10 && warmFailures === 0,
          `p99 ${p99.toFixed(1)} ms, p50 ${quantile([...latencies], 0.5).toFixed(1)} ms, max ${quantile([...latencies], 1).toFixed(1)} ms over ${latencies.length} reads, ${warmFailures} not 200`),
        criterion('Nexus RSS < 300 MB', peakRss < 300, `peak ${peakRss.toFixed(0)} MiB (idle ${idleRss.toFixed(0)} MiB)`),
        criterion('Nexus alive', stack.nexusProcess()?.exitCode === null, `exit code ${String(stack.nexusProcess()?.exitCode)}`),
      ],
      notes: [
        `${attacks} attack requests, ${(bytes / 1e6).toFixed(0)} MB written to their sockets in ${seconds} s (bombers in a worker thread)`,
        `Nexus event-loop p99 per 1 s window: median ${quantile([...loopP99], 0.5).toFixed(1)} ms, worst ${quantile([...loopP99], 1).toFixed(1)} ms`,
        `load average at the end: ${loadavg()}`,
      ],
    };
  } finally {
    await stack.stop();
  }
}
