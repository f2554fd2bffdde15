/**
 * FI-19, long soak: the FI-10 mix for 30 min with a Keeper restart (SIGTERM, start again
 * empty; Keepers 1, 2, 3 in turn) every 2 min and a Nexus SIGKILL (then start) every 5 min.
 * Short form: 5 min, a Keeper restart every 60 s and a Nexus SIGKILL every 120 s.
 *
 * Each Nexus incarnation is measured idle (load paused until Nexus holds no client
 * connection) once its warm-up is over (60 s; short form 30 s) and again before it is killed
 * or at the end (after such a pause the clients come back spread over one think time, as at
 * the start, not as one herd of 1,000 requests and 200 handshakes within 20 ms): RSS growth
 * < 10% and open fds within ±5 between the two. Event-loop delay p99
 * from /metrics every 10 s after warm-up (each window's p99), < 20 ms. Every acknowledged
 * write is read back after each Nexus restart and at the end (0 lost acks, 0 integrity
 * errors); GETs during the load are checked too. Each restarted Keeper must be ready (share
 * re-pushed) within 30 s. The error lines (level ≥ error) of Nexus and the Keepers over the
 * whole run must number exactly the faults injected.
 */
import { Stack } from '../helpers/stack.js';
import { DEFAULT_MIX, MixLoad, mixIdentities } from './load.js';
import { mapText } from './stats.js';
import { mixNotes } from './fi10-many-clients.js';
import {
  cpuMeter, criterion, errorDigest, errorLines, eventLoopP99Ms, fdCount, linesAtLeast, loadavg, metric, progress, quantile, rssKiB, sleep, waitFor, NEXUS_ENV, WARN_LOGS,
  type RunOptions, type ScenarioResult,
} from './shared.js';

/** Idle figures: RSS (KiB), fds, V8 heap used and external memory (MiB, from /metrics). */
interface Idle { rss: number; fds: number; heap: number; ext: number }

interface Incarnation { pid: number; readyAt: number; meter: () => string; cpu?: string; warm?: Idle; end?: Idle; el: number[]; elQuiet: number[] }

export async function runFi19(opts: RunOptions): Promise<ScenarioResult> {
  const id = 'FI-19';
  const seconds = opts.long ? 1800 : 300;
  const keeperEvery = opts.long ? 120 : 60;
  const nexusEvery = opts.long ? 300 : 120;
  const warmupS = opts.long ? 60 : 30;
  progress(`${id}: starting the stack (50 identities); ${seconds} s, Keeper restart every ${keeperEvery} s, Nexus SIGKILL every ${nexusEvery} s`);
  const stack = await Stack.start({ identities: mixIdentities(DEFAULT_MIX.identities), ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  const nexusLogs: string[] = [];
  const keeperLogs: string[] = [];
  // Closed on every way out: its Workload API sources would otherwise keep reconnecting to the stopped agent.
  let load: MixLoad | undefined;
  try {
    const pilot = await stack.client('pilot');
    const mix = await MixLoad.open(stack, pilot, DEFAULT_MIX);
    load = mix;
    const incs: Incarnation[] = [{ pid: stack.pid('nexus')!, readyAt: Date.now(), meter: cpuMeter(stack.pid('nexus')!), el: [], elQuiet: [] }];
    const keeperReadyMs: number[] = [];
    const verifies: Array<{ lost: number; integrity: number; failed: number; checked: number }> = [];
    let faults = 0;
    let keeperNext = 1;
    // Event-loop windows touched by a fault, a pause or the reconnection burst after one are
    // reported apart too (the criterion counts every window after warm-up).
    let disturbedAt = Date.now();
    let scrapedAt = Date.now();

    /** RSS and fds of the current Nexus with the load paused and every client connection closed. */
    const idle = async (): Promise<Idle> => {
      await mix.pause();
      await waitFor(async () => (await metric(stack.nexusOpsUrl(), 'spike_tls_connections_verified').catch(() => -1)) === 0, 60_000, 'Nexus to hold no client connection');
      const pid = stack.pid('nexus')!;
      const mib = async (name: string): Promise<number> => Math.round((await metric(stack.nexusOpsUrl(), name)) / 2 ** 20);
      const m = { rss: rssKiB(pid), fds: fdCount(pid), heap: await mib('nodejs_heap_size_used_bytes'), ext: await mib('nodejs_external_memory_bytes') };
      mix.resume();
      disturbedAt = Date.now();
      return m;
    };
    const verify = async (): Promise<void> => {
      await mix.pause();
      verifies.push(await mix.verifyAll(pilot));
      mix.resume();
      disturbedAt = Date.now();
    };

    const t0 = Date.now();
    mix.start();
    const events: Array<{ at: number; kind: 'keeper' | 'nexus' }> = [];
    for (let t = keeperEvery; t < seconds; t += keeperEvery) events.push({ at: t, kind: 'keeper' });
    for (let t = nexusEvery; t < seconds; t += nexusEvery) events.push({ at: t, kind: 'nexus' });
    events.sort((a, b) => a.at - b.at || (a.kind === 'keeper' ? -1 : 1));
    const until = async (atS: number): Promise<void> => {
      // Samples every 10 s while waiting: event-loop p99 windows, and the warm-up measurement.
      for (;;) {
        const now = Date.now();
        if (now >= t0 + atS * 1000) return;
        await sleep(Math.min(10_000, t0 + atS * 1000 - now));
        const inc = incs[incs.length - 1]!;
        const el = await eventLoopP99Ms(stack.nexusOpsUrl()).catch(() => undefined);
        const quiet = disturbedAt < scrapedAt;
        scrapedAt = Date.now();
        if (Date.now() - inc.readyAt >= warmupS * 1000) {
          if (el !== undefined) inc.el.push(el);
          if (el !== undefined && quiet) inc.elQuiet.push(el);
          if (inc.warm === undefined) inc.warm = await idle();
        }
      }
    };
    for (const ev of events) {
      await until(ev.at);
      faults++;
      disturbedAt = Date.now();
      if (ev.kind === 'keeper') {
        const k = keeperNext;
        keeperNext = (keeperNext % 3) + 1;
        progress(`${id}: restarting Keeper ${k} at ${Math.round((Date.now() - t0) / 1000)} s`);
        await stack.killKeeper(k, 'SIGTERM');
        keeperLogs.push(stack.logs(`keeper-${k}`));
        const s0 = Date.now();
        await stack.startKeeper(k);
        await waitFor(async () => (await fetch(`${stack.keeperOpsUrl(k)}/readyz`).catch(() => undefined))?.status === 200, 120_000, `Keeper ${k} ready again`);
        keeperReadyMs.push(Date.now() - s0);
      } else {
        const inc = incs[incs.length - 1]!;
        if (inc.warm !== undefined) inc.end = await idle();
        inc.cpu = inc.meter();
        await sleep(2000); // the load going again before the kill
        progress(`${id}: SIGKILL Nexus at ${Math.round((Date.now() - t0) / 1000)} s`);
        await stack.killNexus('SIGKILL');
        nexusLogs.push(stack.logs('nexus'));
        await stack.startNexus();
        await stack.waitReady(120_000);
        incs.push({ pid: stack.pid('nexus')!, readyAt: Date.now(), meter: cpuMeter(stack.pid('nexus')!), el: [], elQuiet: [] });
        await verify();
      }
    }
    await until(seconds);
    const last = incs[incs.length - 1]!;
    if (last.warm !== undefined) last.end = await idle();
    last.cpu = last.meter();
    await mix.stop();
    const s = mix.takeStats();
    await verify();
    await mix.close();
    nexusLogs.push(stack.logs('nexus'));
    for (const k of [1, 2, 3]) keeperLogs.push(stack.logs(`keeper-${k}`));

    const measured = incs.filter((i) => i.warm !== undefined && i.end !== undefined);
    const growth = measured.map((i) => (i.end!.rss / i.warm!.rss - 1) * 100);
    const fdDelta = measured.map((i) => i.end!.fds - i.warm!.fds);
    const el = incs.flatMap((i) => i.el);
    const elQuiet = incs.flatMap((i) => i.elQuiet);
    const nErr = nexusLogs.flatMap(errorLines);
    const kErr = keeperLogs.flatMap(errorLines);
    const lost = s.lostAcks + verifies.reduce((a, v) => a + v.lost + v.failed, 0);
    const integrity = s.integrityErrors + verifies.reduce((a, v) => a + v.integrity, 0);
    const f = (x: number): string => (Math.round(x * 10) / 10).toFixed(1);
    return {
      id,
      criteria: [
        criterion('RSS growth < 10% after warm-up', measured.length > 0 && growth.every((g) => g < 10),
          `per Nexus incarnation (idle, warm-up → end): ${measured.map((i, j) => `${Math.round(i.warm!.rss / 1024)} → ${Math.round(i.end!.rss / 1024)} MiB (${f(growth[j]!)}%)`).join('; ') || 'none measured'}`),
        criterion('fd count ±5', measured.length > 0 && fdDelta.every((d) => Math.abs(d) <= 5),
          `per incarnation: ${measured.map((i) => `${i.warm!.fds} → ${i.end!.fds}`).join('; ') || 'none measured'}`),
        criterion('event-loop delay p99 < 20 ms', el.length > 0 && Math.max(...el) < 20,
          `${el.length} windows of 10 s after warm-up: median ${f(quantile([...el], 0.5))} ms, worst ${f(Math.max(...el))} ms (figures include the 10 ms sampling interval)`),
        criterion('0 lost acks', lost === 0,
          `${s.lostAcks} during load; after ${verifies.length} verifications: ${verifies.map((v) => `${v.lost} lost/${v.failed} unreadable of ${v.checked}`).join(', ')}; ${s.acks} acks`),
        criterion('0 integrity errors', integrity === 0, `${integrity}`),
        criterion('error-log count = injected faults', nErr.length + kErr.length === faults,
          `${nErr.length + kErr.length} error lines for ${faults} faults: Nexus ${nErr.length} (${errorDigest(nErr)}); Keepers ${kErr.length} (${errorDigest(kErr)})`),
        criterion('each restarted Keeper ready within 30 s', keeperReadyMs.every((ms) => ms < 30_000),
          `${keeperReadyMs.length} restarts, ready after ${keeperReadyMs.map((ms) => `${f(ms / 1000)} s`).join(', ')}`),
      ],
      notes: [
        ...mixNotes(s, seconds),
        `warn lines: Nexus ${nexusLogs.flatMap((l) => linesAtLeast(l, 40)).length - nErr.length} (${errorDigest(nexusLogs.flatMap((l) => linesAtLeast(l, 40)).filter((l) => !nErr.includes(l)))}); Keepers ${errorDigest(keeperLogs.flatMap((l) => linesAtLeast(l, 40)).filter((l) => !kErr.includes(l)))}`,
        `GET p99 ${quantile(s.get, 0.99)} ms, PUT p99 ${quantile(s.put, 0.99)} ms (whole run, faults included); 5xx ${s.fiveXX}`,
        `event-loop p99 in the ${elQuiet.length} windows after warm-up with no fault, pause or resumption in them: median ${f(quantile([...elQuiet], 0.5))} ms, worst ${f(Math.max(...elQuiet))} ms`,
        `idle V8 heap used / external memory per incarnation (MiB, warm-up → end): ${measured.map((i) => `${i.warm!.heap}/${i.warm!.ext} → ${i.end!.heap}/${i.end!.ext}`).join('; ')}`,
        ...incs.map((i, j) => `Nexus incarnation ${j + 1}: ${i.cpu ?? 'no CPU figures'}`),
        `5xx by code: ${mapText(s.fiveXXCodes)}${s.fiveXXSeconds.size > 0 ? ` at ${[...s.fiveXXSeconds].sort((a, b) => a - b).join(', ')} s` : ''}`,
        `load average at the end: ${loadavg()}`,
      ],
    };
  } finally {
    await load?.close();
    await stack.stop();
  }
}
