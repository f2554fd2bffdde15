/**
 * FI-16, SVID rotation under load: spike-agent issues 60 s SVIDs, so every component (Nexus,
 * Keepers) and every client identity rotates every 30 s (half the lifetime), while the FI-10
 * mix runs, for 10 min (short form 3 min). Connections are kept alive across rotations, so a
 * connection can outlive the client certificate it was opened with: the server then answers
 * the next request on it 401 with `connection: close` (its grant lapsed) or closes it idle.
 * Pass: no failed request apart from those (401 on a lapsed connection, or a connection-level
 * failure), and each of those succeeds when sent again; both sides did rotate; no lost ack.
 */
import { Stack } from '../helpers/stack.js';
import { DEFAULT_MIX, MixLoad, mixIdentities } from './load.js';
import { mapText } from './stats.js';
import { mixNotes } from './fi10-many-clients.js';
import { cpuMeter, criterion, errorDigest, errorLines, linesAtLeast, loadavg, progress, quantile, metric, sleep, NEXUS_ENV, WARN_LOGS, type RunOptions, type ScenarioResult } from './shared.js';

const TTL_S = 60;
const ROTATE_S = TTL_S / 2;

export async function runFi16(opts: RunOptions): Promise<ScenarioResult> {
  const seconds = opts.long ? 600 : 180;
  const id = 'FI-16';
  progress(`${id}: starting the stack (50 identities, SVID TTL ${TTL_S} s)`);
  const stack = await Stack.start({ identities: mixIdentities(DEFAULT_MIX.identities), svidTtl: `${TTL_S}s`, ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  // Closed on every way out: its Workload API sources would otherwise keep reconnecting to the stopped agent.
  let load: MixLoad | undefined;
  try {
    const pilot = await stack.client('pilot');
    load = await MixLoad.open(stack, pilot, { ...DEFAULT_MIX, retryLapsed: true });
    let clientRotations = 0;
    load.sources[0]!.on('update', () => clientRotations++);
    // Nexus's own rotations: distinct values of its SVID expiry gauge, sampled every 2 s.
    const serverExpiries = new Set<number>();
    const sample = async (): Promise<void> => {
      serverExpiries.add(await metric(stack.nexusOpsUrl(), 'spike_svid_expiry_timestamp_seconds'));
    };
    await sample();
    progress(`${id}: ${DEFAULT_MIX.clients} clients for ${seconds} s`);
    const meter = cpuMeter(stack.pid('nexus')!);
    load.start();
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      await sleep(Math.min(2000, end - Date.now()));
      await sample();
    }
    await load.stop();
    const cpu = meter();
    const s = load.takeStats();
    const verify = await load.verifyAll(pilot);
    await load.close();
    const serverRotations = serverExpiries.size - 1;
    const lapsedLog = (stack.logs('nexus').match(/"event":"tls_peer_lapsed"/g) ?? []).length;
    const expected = Math.floor(seconds / ROTATE_S) - 1;
    let unexplained = 0;
    for (const [status, n] of s.status) if (status !== 200) unexplained += n;
    unexplained -= s.lapsed401;
    const netErrors = [...s.netErrors.values()].reduce((a, b) => a + b, 0);
    const retriesFailed = [...s.retriesFailed.values()].reduce((a, b) => a + b, 0);
    const errors = errorLines(stack.logs('nexus'));
    const warns = linesAtLeast(stack.logs('nexus'), 40).filter((l) => !errors.includes(l));
    const keeperWarns = [1, 2, 3].flatMap((k) => linesAtLeast(stack.logs(`keeper-${k}`), 40));
    const keeperErrors = [1, 2, 3].flatMap((k) => errorLines(stack.logs(`keeper-${k}`)));
    return {
      id,
      criteria: [
        criterion(`both sides rotated (≥ ${expected} each)`, clientRotations >= expected && serverRotations >= expected,
          `client identity ${clientRotations} rotations, Nexus ${serverRotations} in ${seconds} s`),
        criterion('no failed request except on lapsed connections', unexplained === 0,
          `${unexplained} other failures (statuses ${mapText(s.status)}); ${s.lapsed401} lapsed-connection 401s, ${netErrors} connection-level failures (${mapText(s.netErrors)})`),
        criterion('every lapsed-connection failure succeeds on retry', retriesFailed === 0,
          `${s.retriesOk} retries succeeded, ${retriesFailed} failed (${mapText(s.retriesFailed)})`),
        criterion('0 lost acks', s.lostAcks === 0 && verify.lost === 0 && verify.failed === 0 && s.integrityErrors === 0 && verify.integrity === 0,
          `${s.lostAcks} during load, ${verify.lost} of ${verify.checked} keys at the end (${verify.failed} reads failed); integrity errors ${s.integrityErrors + verify.integrity}; ${s.acks} acks`),
      ],
      notes: [
        ...mixNotes(s, seconds),
        `GET p99 ${quantile(s.get, 0.99)} ms, PUT p99 ${quantile(s.put, 0.99)} ms (first attempt to final answer)`,
        `Nexus logged ${lapsedLog} tls_peer_lapsed warnings (throttled); error lines: Nexus ${errors.length} (${errorDigest(errors)}), Keepers ${keeperErrors.length} (${errorDigest(keeperErrors)})`,
        cpu,
        `warn and error lines: Nexus ${errorDigest(warns)}; Keepers ${errorDigest(keeperWarns)}`,
        `load average at the end: ${loadavg()}`,
      ],
    };
  } finally {
    await load?.close();
    await stack.stop();
  }
}
