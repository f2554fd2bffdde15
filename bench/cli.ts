/**
 * `cli.get.wall` (issue 15): wall time of one `spike secret get` run as a user runs it (a new
 * `node bin/spike.js` process: start-up, SVID fetch from spike-agent, mTLS to Nexus, one GET,
 * output, exit) against the bench stack, compared with a bare `node -e 0` started the same way
 * in the same run. Runs alternate (baseline, CLI, baseline, CLI …) so both see the same machine
 * load; each figure is the median of `runs`, from spawn to the child's exit with its output
 * read. One unmeasured warm-up of each comes first (file-system cache).
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { binPath } from '../test/helpers/bin.js';
import type { Stack } from '../test/helpers/stack.js';
import { progress, row, type BenchRow, type Goal } from './harness.js';

export const CLI_GOAL: Goal = { on: 'ratio', op: '<=', target: 2, text: '≤ 2×' };
const PATH = 'bench/cli/creds';

/** Runs `node <args>`; resolves with the wall time in ms once it exited and its output was read. */
function timed(args: string[], env: Record<string, string>): Promise<{ ms: number; code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ ms: performance.now() - t0, code, out, err }));
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The `cli.get.wall` row; `runs` measured runs of each (10 in a full run). */
export async function benchCliGet(stack: Stack, runs = 10): Promise<BenchRow[]> {
  progress(`CLI spike secret get vs node -e 0 (${runs} runs each, alternating)`);
  const put = await stack.spike(['secret', 'put', PATH, 'username=admin', `password=${'p'.repeat(32)}`]);
  if (put.code !== 0) throw new Error(`could not write the bench secret: ${put.stderr.trim().slice(0, 200)}`);
  const env = { SPIFFE_ENDPOINT_SOCKET: stack.socket('pilot'), SPIKE_NEXUS_API_URL: stack.nexusUrl };
  const cli = [binPath('spike'), 'secret', 'get', PATH];
  const base = ['-e', '0'];
  const check = (r: { code: number | null; out: string; err: string }): void => {
    if (r.code !== 0 || !r.out.includes('admin')) throw new Error(`spike secret get failed (exit ${r.code}): ${r.err.trim().slice(0, 200)}`);
  };
  await timed(base, {});
  check(await timed(cli, env));
  const baseMs: number[] = [];
  const cliMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    baseMs.push((await timed(base, {})).ms);
    const r = await timed(cli, env);
    check(r);
    cliMs.push(r.ms);
  }
  const value = median(cliMs);
  const baseline = median(baseMs);
  const spread = (xs: number[]): string => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))} ms`;
  return [
    row('CLI', {
      id: 'cli.get.wall',
      name: '`spike secret get` wall time (new process, SVID fetch, mTLS GET, exit) vs `node -e 0`',
      value,
      unit: 'ms',
      baseline,
      ratio: value / baseline,
      note: `median of ${runs} each, alternating; spike ${spread(cliMs)}, node -e 0 ${spread(baseMs)}`,
    }, CLI_GOAL),
  ];
}
