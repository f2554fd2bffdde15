/**
 * Issue 13: what the audit trail costs in GET and PUT throughput, audit log on vs off in the
 * same run, on the bench stack. Nexus is restarted with `SPIKE_NEXUS_AUDIT_LOG` (a file in
 * the stack's folder: the same disk as the store, as the dev stack does) and without, in ABBA
 * order — off, on, on, off, twice in a full run — so that drift in the machine's load hits
 * both sides alike; the runs of each side are merged. The stack is left as it was found
 * (Nexus without audit).
 *
 * Rows (`value` = throughput with the audit log on ÷ off, goal ≥ 0.85): GET with 32
 * concurrent clients and PUT with 64 writers (the loads of P1 and P2), where the intent
 * entries' fsyncs are grouped; the single-client figures are reported beside them (there each
 * GET waits for one fsync of its own: the floor of a fail-closed audit).
 */
import fs from 'node:fs';
import path from 'node:path';
import { binPath } from '../test/helpers/bin.js';
import type { Stack } from '../test/helpers/stack.js';
import { progress, row, type BenchRow, type Goal, type LoadResult, closedLoop } from './harness.js';
import { cpuMs, merge } from './proc.js';
import type { StackBench } from './stack-bench.js';

const GOAL: Goal = { on: 'ratio', op: '>=', target: 0.85, text: '≥ 0.85×' };
const SECRETS = '/v1/store/secrets';
const GET_PATH = 'bench/audit/get';
const VALUE = { username: 'admin', password: 'p'.repeat(32) };

interface Load { key: string; path: string; concurrency: number; body: (w: number, i: number) => string }

const LOADS: readonly Load[] = [
  { key: 'get.c32', path: `${SECRETS}?action=get`, concurrency: 32, body: () => JSON.stringify({ path: GET_PATH }) },
  { key: 'put.c64', path: SECRETS, concurrency: 64, body: (w) => JSON.stringify({ path: `bench/audit/w${w}`, values: VALUE }) },
  { key: 'get.c1', path: `${SECRETS}?action=get`, concurrency: 1, body: () => JSON.stringify({ path: GET_PATH }) },
  { key: 'put.c1', path: SECRETS, concurrency: 1, body: (w) => JSON.stringify({ path: `bench/audit/w${w}`, values: VALUE }) },
];

/** Restarts the stack's Nexus with the audit log at `file`, or without one. */
async function restartNexus(stack: Stack, file: string | undefined): Promise<void> {
  await stack.killNexus();
  if (file === undefined) await stack.startNexus();
  else await stack.startCustom('nexus', binPath('spike-nexus'), { ...stack.nexusEnv(), SPIKE_NEXUS_AUDIT_LOG: file }, 'spike-nexus ready');
  await stack.waitReady();
}

/** The rows this module gives (for the "not available" fallback). */
export const AUDIT_ROWS: Array<[string, string, string, Goal]> = [
  ['A', 'audit.get.throughput', 'secret GET throughput with the audit log on vs off', GOAL],
  ['A', 'audit.put.throughput', 'secret PUT throughput with the audit log on vs off', GOAL],
];

/** The share of one core Nexus used over a side's measured windows. */
const pct = (cpuTotalMs: number | undefined, r: LoadResult): string => `${(((cpuTotalMs ?? Number.NaN) / r.elapsedMs) * 100).toFixed(0)}%`;

export async function benchAudit(stack: Stack, sb: StackBench): Promise<BenchRow[]> {
  const ms = sb.quick ? 1500 : 4000;
  const file = path.join(stack.dir, 'bench-audit', 'audit.log');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const pilot = await stack.client('pilot');
  await pilot.putSecret(GET_PATH, VALUE);
  const runs: Record<'on' | 'off', Record<string, LoadResult | undefined>> = { on: {}, off: {} };
  // Nexus's CPU (ms, from /proc) over the measured windows: whether a side was bound by CPU or by waits.
  const cpu: Record<'on' | 'off', Record<string, number>> = { on: {}, off: {} };
  const measure = async (side: 'on' | 'off'): Promise<void> => {
    for (const l of LOADS) {
      progress(`audit ${side}: ${l.key}, ${ms / 1000} s`);
      const d = sb.dispatcher(l.concurrency);
      try {
        const spec = { dispatcher: d, origin: sb.origin, path: l.path, body: l.body };
        // Warm up with a ramp (16, 32, … clients) so the connections open in small bursts, as
        // the JIT warms up.
        for (let k = Math.min(16, l.concurrency); ; k = Math.min(2 * k, l.concurrency)) {
          await closedLoop({ ...spec, concurrency: k, durationMs: 300 });
          if (k === l.concurrency) break;
        }
        const pid = stack.pid('nexus');
        const c0 = pid === undefined ? Number.NaN : cpuMs(pid);
        runs[side][l.key] = merge(runs[side][l.key], await closedLoop({ ...spec, concurrency: l.concurrency, durationMs: ms }));
        cpu[side][l.key] = (cpu[side][l.key] ?? 0) + (pid === undefined ? Number.NaN : cpuMs(pid) - c0);
      } finally {
        await d.close();
      }
    }
  };
  // ABBA (twice in a full run): drift in the machine's load hits both sides alike.
  const order: Array<'on' | 'off'> = sb.quick ? ['off', 'on', 'on', 'off'] : ['off', 'on', 'on', 'off', 'off', 'on', 'on', 'off'];
  let current: 'on' | 'off' = 'off';
  let entries = 0;
  try {
    for (const side of order) {
      if (side !== current) {
        progress(`audit: restarting Nexus ${side === 'on' ? 'with' : 'without'} SPIKE_NEXUS_AUDIT_LOG`);
        await restartNexus(stack, side === 'on' ? file : undefined);
        current = side;
      }
      await measure(side);
    }
  } finally {
    entries = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0;
    if (current === 'on') await restartNexus(stack, undefined);
  }
  const rows: BenchRow[] = [];
  for (const l of LOADS) {
    const on = runs.on[l.key]!;
    const off = runs.off[l.key]!;
    const [kind, c] = l.key.split('.') as [string, string];
    const main = l.concurrency > 1;
    const perReq = (side: 'on' | 'off', r: LoadResult): string => `${(((cpu[side][l.key] ?? Number.NaN) * 1000) / r.ok).toFixed(0)}`;
    const who = `${l.concurrency} ${kind === 'get' ? 'client' : 'writer'}${l.concurrency > 1 ? 's' : ''}`;
    rows.push(row('A', {
      id: main ? `audit.${kind}.throughput` : `audit.${kind}.throughput.${c}`,
      name: `secret ${kind.toUpperCase()} throughput with the audit log on vs off, ${who}`,
      value: on.opsPerSec, unit: 'ops/s', baseline: off.opsPerSec, ratio: on.opsPerSec / off.opsPerSec,
      note: `baseline: the same load with the audit log off (ABBA order, same run); ${on.ok} / ${off.ok} requests on / off; ` +
        `Nexus CPU per request ${perReq('on', on)} / ${perReq('off', off)} µs, Nexus busy ${pct(cpu.on[l.key], on)} / ${pct(cpu.off[l.key], off)} of one core` +
        `${on.errors + off.errors > 0 ? `, errors on ${on.errors}, off ${off.errors}` : ''}` +
        (main ? '' : '; one client: each request waits for its own audit fsync'),
    }, main ? GOAL : { on: 'ratio', op: 'report', target: 0, text: 'report only' }));
  }
  progress(`audit: ${entries} audit entries written during the "on" runs`);
  return rows;
}
