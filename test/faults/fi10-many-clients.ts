/**
 * FI-10, thousands of clients: 1,000 logical clients over 50 distinct SVIDs on keep-alive
 * connections, 90% GET / 10% PUT, each about one request a second (think time uniform
 * 0–2 s), for 60 s (short form 30 s). Pass: no 5xx, no lost ack (every acknowledged write
 * reads back at the end), p99 GET < 50 ms and p99 PUT < 200 ms (liveness ceilings). Before the
 * measured phase every client writes its first key (seed), which opens the keep-alive pools.
 */
import { Stack } from '../helpers/stack.js';
import { DEFAULT_MIX, MixLoad, mixIdentities } from './load.js';
import { mapText, slowText, type MixStats } from './stats.js';
import { cpuMeter, criterion, eventLoopP99Ms, errorDigest, errorLines, fdCount, loadavg, progress, quantile, rssKiB, sleep, NEXUS_ENV, WARN_LOGS, type RunOptions, type ScenarioResult } from './shared.js';

/** The FI-10 criteria over one load phase's stats and the final verification. */
export function mixCriteria(s: MixStats, verify: { lost: number; integrity: number; failed: number; checked: number }): ScenarioResult['criteria'] {
  const g99 = quantile(s.get, 0.99);
  const p99 = quantile(s.put, 0.99);
  return [
    criterion('0 5xx', s.fiveXX === 0, `${s.fiveXX} 5xx`),
    criterion('0 lost acks', s.lostAcks === 0 && verify.lost === 0 && verify.failed === 0,
      `${s.lostAcks} during load, ${verify.lost} of ${verify.checked} keys at the end (${verify.failed} reads failed), ${s.acks} acks`),
    criterion('GET p99 < 50 ms', g99 < 50, `p50 ${quantile(s.get, 0.5)} ms, p99 ${g99} ms, max ${quantile(s.get, 1)} ms over ${s.get.length} GETs`),
    criterion('PUT p99 < 200 ms', p99 < 200, `p50 ${quantile(s.put, 0.5)} ms, p99 ${p99} ms, max ${quantile(s.put, 1)} ms over ${s.put.length} PUTs`),
  ];
}

export function mixNotes(s: MixStats, seconds: number): string[] {
  const total = [...s.status.values()].reduce((a, b) => a + b, 0) + [...s.netErrors.values()].reduce((a, b) => a + b, 0);
  return [
    `${total} requests in ${seconds} s (${Math.round(total / seconds)}/s); statuses ${mapText(s.status)}; connection errors ${mapText(s.netErrors)}; integrity errors ${s.integrityErrors}`,
    `slow answers (s since start): ${slowText(s.slowAt)}`,
    `5xx by code: ${mapText(s.fiveXXCodes)}${s.fiveXXSeconds.size > 0 ? ` at ${[...s.fiveXXSeconds].sort((a, b) => a - b).join(', ')} s` : ''}`,
    `past the first 10 s (connections opened): GET p99 ${quantile(s.getSteady, 0.99)} ms, PUT p99 ${quantile(s.putSteady, 0.99)} ms`,
  ];
}

export async function runFi10(opts: RunOptions): Promise<ScenarioResult> {
  const seconds = opts.long ? 60 : 30;
  const id = 'FI-10';
  progress(`${id}: starting the stack (50 identities)`);
  const stack = await Stack.start({ identities: mixIdentities(DEFAULT_MIX.identities), ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  // Closed on every way out: its Workload API sources would otherwise keep reconnecting to the stopped agent.
  let load: MixLoad | undefined;
  try {
    const pilot = await stack.client('pilot');
    load = await MixLoad.open(stack, pilot, DEFAULT_MIX);
    const pid = stack.pid('nexus')!;
    const before = { rss: rssKiB(pid), fds: fdCount(pid) };
    const seeded = await load.seed();
    progress(`${id}: ${DEFAULT_MIX.clients} clients for ${seconds} s`);
    await eventLoopP99Ms(stack.nexusOpsUrl()); // resets the window
    const meter = cpuMeter(pid);
    load.start();
    // Nexus's event-loop delay p99 in 10 s windows (reported; FI-19 has the criterion).
    const windows: number[] = [];
    for (let t = 0; t < seconds; t += 10) {
      await sleep(Math.min(10, seconds - t) * 1000);
      windows.push(Math.round(await eventLoopP99Ms(stack.nexusOpsUrl())));
    }
    const during = { rss: rssKiB(pid), fds: fdCount(pid) };
    const cpu = `${meter()}; Nexus event-loop delay p99 per 10 s window: ${windows.join(', ')} ms`;
    await load.stop();
    const s = load.takeStats();
    const verify = await load.verifyAll(pilot);
    await load.close();
    const errors = errorLines(stack.logs('nexus'));
    return {
      id,
      criteria: [...mixCriteria(s, verify), criterion('Nexus alive', stack.nexusProcess()?.exitCode === null, `exit code ${String(stack.nexusProcess()?.exitCode)}`)],
      notes: [
        `set-up before the measured phase: every client's first key written, 64 at a time, connections opened, in ${seeded.ms} ms (p99 ${seeded.p99} ms)`,
        ...mixNotes(s, seconds),
        `Nexus RSS ${Math.round(before.rss / 1024)} → ${Math.round(during.rss / 1024)} MiB, fds ${before.fds} → ${during.fds} under load; error log lines ${errors.length} (${errorDigest(errors)})`,
        cpu,
        `load average at the end: ${loadavg()}`,
      ],
    };
  } finally {
    await load?.close();
    await stack.stop();
  }
}
