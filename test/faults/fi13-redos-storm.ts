/**
 * FI-13, ReDoS storm, black-box: an identity allowed to write policies stores 100 path patterns
 * as costly as the write-time bound allows (bound to a second identity, with `read` and
 * `list`), then that identity sends 1,000 requests from 10 concurrent clients: 900 GETs on
 * distinct 500-character paths none of the patterns allows, and 100 listings of a prefix
 * holding 2,000 long paths it may not see (the short form: 400 paths). Pass: every GET is
 * denied (401), every listing is answered (200, or 400 `list_too_costly` once it took
 * `SPIKE_NEXUS_LIST_POLICY_BUDGET`), none is left unanswered, and Nexus's event-loop delay,
 * read from its `/metrics` every second, stays under 50 ms at its worst.
 */
import { Stack } from '../helpers/stack.js';
import { stormPaths, stormPatterns } from '../helpers/redos-storm.js';
import { rawClient } from '../e2e/secrets-helpers.js';
import { criterion, loadavg, metric, progress, quantile, sleep, NEXUS_ENV, WARN_LOGS, type RunOptions, type ScenarioResult } from './shared.js';

const ATTACKER = 'spiffe://spike.ist/workload/storm';
const REQUESTS = 1000;
const CLIENTS = 10;

/** A storm path made a valid secret path of the same length (no empty segment, no slash at either end). */
const secretPath = (p: string): string => p.replace(/\/\//g, '/a').replace(/^\//, 'a').replace(/\/Z$/, 'aZ');

export async function runFi13(opts: RunOptions): Promise<ScenarioResult> {
  const id = 'FI-13';
  const hidden = opts.long ? 2000 : 400;
  progress(`${id}: starting the stack`);
  const stack = await Stack.start({ identities: { storm: ATTACKER }, ops: true, nexusEnv: NEXUS_ENV, keeperEnv: WARN_LOGS });
  try {
    const pilot = await rawClient(stack, 'pilot');
    const storm = await rawClient(stack, 'storm');
    progress(`${id}: ${hidden} hidden paths, 100 near-bound patterns`);
    const listed = stormPaths(hidden, 300).map((p, i) => `lst/${secretPath(p)}${i}`);
    for (let i = 0; i < listed.length; i += 50) {
      await Promise.all(listed.slice(i, i + 50).map((path) => pilot.post('/v1/store/secrets', { path, values: { v: 'x' } })));
    }
    let stored = 0;
    for (const [i, pathPattern] of stormPatterns(100).entries()) {
      const r = await pilot.post('/v1/acl/policy', { name: `storm-${i}`, spiffeidPattern: `^${ATTACKER.replace(/\./g, '\\.')}$`, pathPattern, permissions: ['read', 'list'] });
      if (r.status === 200) stored++;
    }
    const ops = stack.nexusOpsUrl();
    await metric(ops, 'nodejs_eventloop_lag_max_seconds'); // starts a window
    const windows: number[] = [];
    let running = true;
    const sampler = (async () => {
      while (running) {
        await sleep(1000);
        const max = await metric(ops, 'nodejs_eventloop_lag_max_seconds');
        if (Number.isFinite(max)) windows.push(max * 1000);
      }
    })();
    const gets = stormPaths(900, 500).map(secretPath);
    const status = new Map<string, number>();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (next < REQUESTS) {
        const n = next++;
        let s: string;
        try {
          const r = n % 10 === 9
            ? await storm.post('/v1/store/secrets?action=list', { prefix: 'lst/' })
            : await storm.post('/v1/store/secrets?action=get', { path: gets[n - Math.floor(n / 10)]! });
          s = String(r.status);
        } catch (e) {
          s = `error: ${(e as Error).message}`;
        }
        status.set(s, (status.get(s) ?? 0) + 1);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    running = false;
    await sampler;
    await pilot.close();
    await storm.close();
    const worst = quantile([...windows], 1);
    const answered = [...status.entries()].filter(([s]) => s.startsWith('error')).reduce((a, [, n]) => a + n, 0) === 0;
    return {
      id,
      criteria: [
        criterion('100 near-bound patterns stored', stored === 100, `${stored} stored`),
        criterion('every GET denied, every listing answered', answered && (status.get('401') ?? 0) === 900 && (status.get('200') ?? 0) + (status.get('400') ?? 0) === 100,
          [...status.entries()].map(([s, n]) => `${s}: ${n}`).join(', ')),
        criterion('event-loop delay max < 50 ms', worst < 50, `worst 1 s window ${worst} ms, median ${quantile([...windows], 0.5)} ms over ${windows.length} windows`),
        criterion('Nexus alive', stack.nexusProcess()?.exitCode === null, `exit code ${String(stack.nexusProcess()?.exitCode)}`),
      ],
      notes: [`${REQUESTS} requests from ${CLIENTS} clients in ${seconds.toFixed(1)} s`, `load average at the end: ${loadavg()}`],
    };
  } finally {
    await stack.stop();
  }
}
