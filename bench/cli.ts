/**
 * `cli.get.wall` (issue 15): wall time of one `spike secret get` run as a user runs it (the
 * `spike` command, bin/spike.js run as a program so its launcher line starts Node: start-up,
 * SVID fetch from spike-agent, mTLS to Nexus, one GET, output, exit) against the bench stack,
 * compared with a bare `node -e 0` started with the same environment in the same run. Runs alternate (baseline, CLI, baseline, CLI …) so both see the same machine
 * load; each figure is the median of `runs`, from spawn to the child's exit with its output
 * read. One unmeasured warm-up of each comes first (file-system cache).
 *
 * `cli.floor.wall` (report only) runs in the same loop: a `node -e` that loads only what any
 * mTLS client on Node needs before it can say a word — `node:http2` (the Workload API is
 * gRPC), `node:https`, and one secure context trusting one CA — with no network and none of
 * our code, under the launcher's `--use-openssl-ca` (without it, Node 20 builds its whole
 * bundled root store for that context). It is the part of the CLI row that no change to the
 * CLI itself can remove.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { binCommand, binEnvPath } from '../test/helpers/bin.js';
import type { Stack } from '../test/helpers/stack.js';
import { progress, row, type BenchRow, type Goal } from './harness.js';

export const CLI_GOAL: Goal = { on: 'ratio', op: '<=', target: 2, text: '≤ 2×' };
const PATH = 'bench/cli/creds';

/** Runs `argv` (a `node …` or a `spike …`); resolves with the wall time in ms once it exited and its output was read. */
function timed(argv: string[], env: Record<string, string>): Promise<{ ms: number; code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(argv[0]!, argv.slice(1), { env: { PATH: binEnvPath(), HOME: process.env['HOME'] ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const cli = [...binCommand('spike'), 'secret', 'get', PATH];
  const base = [process.execPath, '-e', '0'];
  const floor = [process.execPath, '--use-openssl-ca', '-e', "require('node:http2'); require('node:https'); require('node:tls').createSecureContext({ ca: require('node:fs').readFileSync(process.env.CA) })"];
  const floorEnv = { CA: path.join(stack.dir, 'agent', 'ca.crt') };
  const check = (r: { code: number | null; out: string; err: string }): void => {
    if (r.code !== 0 || !r.out.includes('admin')) throw new Error(`spike secret get failed (exit ${r.code}): ${r.err.trim().slice(0, 200)}`);
  };
  const floorOk = (r: { code: number | null; err: string }): void => {
    if (r.code !== 0) throw new Error(`the floor script failed (exit ${r.code}): ${r.err.trim().slice(0, 200)}`);
  };
  await timed(base, {});
  floorOk(await timed(floor, floorEnv));
  check(await timed(cli, env));
  const baseMs: number[] = [];
  const floorMs: number[] = [];
  const cliMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    baseMs.push((await timed(base, {})).ms);
    const f = await timed(floor, floorEnv);
    floorOk(f);
    floorMs.push(f.ms);
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
    row('CLI', {
      id: 'cli.floor.wall',
      name: 'Node\'s own floor for an mTLS CLI (`--use-openssl-ca`, load http2 + https, one secure context with a CA; no network, none of our code) vs `node -e 0`',
      value: median(floorMs),
      unit: 'ms',
      baseline,
      ratio: median(floorMs) / baseline,
      note: `report only: the part of cli.get.wall no CLI change can remove; median of ${runs}, alternating with the two above; ${spread(floorMs)}`,
    }, { on: 'ratio', op: 'report', target: 0, text: 'report only' }),
  ];
}
