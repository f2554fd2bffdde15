/**
 * FI-18, SIGTERM during FI-10: the FI-10 mix (1,000 clients over 50 SVIDs, 200 keep-alive
 * connections) runs for 20 s (`--long`: 40 s), then Nexus gets SIGTERM while the clients keep
 * going; once it has exited it is started again and the mix runs 15 s more (`--long`: 30 s).
 * Right before the signal 200 GETs are sent at once (4 per identity), so that work is
 * certainly in flight when it arrives. Pass:
 * - Nexus exits by itself with code 0 within 10 s;
 * - in-flight work completes: every request that was on its way when the signal was sent
 *   (started before it, answered or failed after it) got an HTTP answer, and none a 5xx,
 *   except requests that never left the client: waiting in its pool for a connection, they
 *   met the closed listener (a dial failure, safe to retry);
 * - ready after the restart (within 30 s of the start);
 * - 0 lost acks and 0 integrity errors: every acknowledged write reads back at the end, and
 *   no read during the load saw a value that was never sent.
 * Requests started after the signal meet a closing or stopped Nexus: the clients see
 * connection errors or answers carrying `Connection: close`, which is what a client retries on
 * (reported, not a criterion).
 */
import { Stack } from '../helpers/stack.js';
import { DEFAULT_MIX, MixLoad, mixIdentities } from './load.js';
import { bump, mapText } from './stats.js';
import { mixNotes } from './fi10-many-clients.js';
import { criterion, errorDigest, errorLines, loadavg, progress, sleep, NEXUS_ENV, WARN_LOGS, type RunOptions, type ScenarioResult } from './shared.js';

const DIAL_FAILED = 'ERR_MTLS_DIAL_FAILED';

interface Call { t0: number; t1: number; status?: number; err?: string }

export async function runFi18(opts: RunOptions): Promise<ScenarioResult> {
  const id = 'FI-18';
  const beforeS = opts.long ? 40 : 20;
  const afterS = opts.long ? 30 : 15;
  progress(`${id}: starting the stack (50 identities)`);
  const stack = await Stack.start({ identities: mixIdentities(DEFAULT_MIX.identities), ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  let load: MixLoad | undefined;
  try {
    const pilot = await stack.client('pilot');
    const mix = await MixLoad.open(stack, pilot, DEFAULT_MIX);
    load = mix;
    const calls: Call[] = [];
    mix.onCall = (c) => calls.push(c);
    await mix.seed();
    progress(`${id}: ${DEFAULT_MIX.clients} clients for ${beforeS} s, then SIGTERM`);
    mix.start();
    await sleep(beforeS * 1000);

    const proc = stack.nexusProcess();
    if (proc === undefined) throw new Error('Nexus is not running');
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    // 4 GETs per identity at once (200, on the 200 connections), then the signal while they
    // are on their way: the mix alone has only a request or two in flight at any moment.
    const burst = mix.burst(4);
    await sleep(2);
    const sentAt = performance.now();
    proc.kill('SIGTERM');
    const ex = await Promise.race([exited, sleep(30_000).then(() => undefined)]);
    const exitMs = performance.now() - sentAt;
    if (ex === undefined) await stack.killNexus('SIGKILL');
    await burst;
    const logsBefore = stack.logs('nexus');

    progress(`${id}: Nexus exited after ${Math.round(exitMs)} ms; starting it again`);
    const s0 = performance.now();
    await stack.startNexus();
    await stack.waitReady(120_000);
    const readyMs = performance.now() - s0;
    await sleep(afterS * 1000);
    await mix.stop();
    const s = mix.takeStats();
    const verify = await mix.verifyAll(pilot);
    await mix.close();

    // In flight at the signal: started before it, ended after it.
    const inflight = calls.filter((c) => c.t0 < sentAt && c.t1 >= sentAt);
    const inflightOutcomes = new Map<string, number>();
    for (const c of inflight) bump(inflightOutcomes, c.status !== undefined ? `${c.status}` : c.err!);
    // A dial failure never sent its request (it waited in the client's pool for a connection,
    // and the listener was gone): safe to retry, not work Nexus dropped.
    const inflightBad = inflight.filter((c) => (c.status === undefined && c.err !== DIAL_FAILED) || (c.status ?? 0) >= 500).length;
    const later = calls.filter((c) => c.t0 >= sentAt && c.t0 < sentAt + exitMs);
    const laterOutcomes = new Map<string, number>();
    for (const c of later) bump(laterOutcomes, c.status !== undefined ? `${c.status}` : c.err!);
    const errs = [...errorLines(logsBefore), ...errorLines(stack.logs('nexus'))];
    return {
      id,
      criteria: [
        criterion('exit 0 within 10 s', ex !== undefined && ex.signal === null && ex.code === 0 && exitMs < 10_000,
          ex === undefined ? 'still running after 30 s (killed)' : `exit code ${String(ex.code)}, signal ${String(ex.signal)}, after ${Math.round(exitMs)} ms`),
        criterion('in-flight work completes', inflight.length > 0 && inflightBad === 0,
          `${inflight.length} requests in flight at the signal: ${mapText(inflightOutcomes)}`),
        criterion('ready after restart', readyMs < 30_000, `ready ${Math.round(readyMs)} ms after the start`),
        criterion('0 lost acks', s.lostAcks === 0 && verify.lost === 0 && verify.failed === 0,
          `${s.lostAcks} during load, ${verify.lost} of ${verify.checked} keys at the end (${verify.failed} reads failed), ${s.acks} acks`),
        criterion('0 integrity errors', s.integrityErrors === 0 && verify.integrity === 0, `${s.integrityErrors} during load, ${verify.integrity} at the end`),
      ],
      notes: [
        ...mixNotes(s, beforeS + afterS + Math.round((exitMs + readyMs) / 1000)),
        `requests started while Nexus was stopping (${Math.round(exitMs)} ms): ${mapText(laterOutcomes)}`,
        `Nexus error lines over both runs: ${errs.length} (${errorDigest(errs)})`,
        `load average at the end: ${loadavg()}`,
      ],
    };
  } finally {
    await load?.close();
    await stack.stop();
  }
}
