/**
 * `npm run bench` (issue 7): starts the real stack once (spike-agent, 3 Keepers, spike-nexus on
 * SQLite) in a temp folder, runs P1–P7 and A (the audit trail on vs off, issue 13) against it,
 * each with its baseline measured in the same run, then the supplementary benchmarks (crypto
 * core, store, bootstrap end to end, postgres store, several Nexus on one PostgreSQL — the
 * last two only in the full run). Progress goes to
 * stderr; the Markdown table goes to stdout and, with the machine and every figure, to
 * `bench/results/latest.{md,json}`; latency distributions to `bench/results/latency.svg`.
 *
 * `npm run bench -- --quick`: short budgets (< 2 min). A benchmark that fails (e.g. a component
 * not built yet) shows a "not available" row with the reason; nothing is ever filled in by hand.
 * The `CLI` row (issue 15, `bench/cli.ts`) times `spike secret get` as a new process against
 * `node -e 0` in the same run. The `CORES` rows (issue 17) run the several-cores prototype
 * (`bench/cores.ts`) and real spike-nexus on SQLite and PostgreSQL (`bench/cores-nexus.ts`, full runs and
 * `--only=CORES`) with 1 and 2 workers under the same load generator. `--only=P1,P4` (or `--only=LIST`, `--only=CLI`) runs a subset (for development; results are then not written unless `--out`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Stack } from '../test/helpers/stack.js';
import { benchBootstrap } from './bootstrap.js';
import { benchCipher } from './cipher.js';
import { benchCliGet, CLI_GOAL } from './cli.js';
import { benchCores } from './cores.js';
import { benchCrypto } from './crypto.js';
import { benchHa } from './ha.js';
import { benchCoresNexus } from './cores-nexus.js';
import { benchHostileRss } from './hostile-rss.js';
import { benchList } from './list.js';
import { describeMachine, machine, notAvailable, progress, reasonOf, row, toMarkdown, worstRatio, type BenchRow, type Goal } from './harness.js';
import { AUDIT_ROWS, benchAudit } from './audit.js';
import { benchAuthz } from './nexus-data.js';
import { latencySvg } from './plot.js';
import { BENCH_APP_ID, StackBench, type Curves } from './stack-bench.js';
import { sealedReadRows, sealedWriteRows } from './sealed-baselines.js';
import { p4, p6 } from './stack-restart.js';
import { p5Ceiling } from './stream-ceiling.js';
import { benchStore } from './store.js';
import { benchStorePostgres } from './store-postgres.js';
import type { BenchResult } from './types.js';

interface Args { quick: boolean; only: Set<string> | undefined; out: string | undefined }

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { quick: false, only: undefined, out: undefined };
  for (const s of argv) {
    if (s === '--quick') a.quick = true;
    else if (s.startsWith('--only=')) a.only = new Set(s.slice(7).toUpperCase().split(',').filter(Boolean));
    else if (s.startsWith('--out=')) a.out = s.slice(6);
    else throw new Error(`unknown argument ${s} (use --quick, --only=P1,P2, --out=DIR)`);
  }
  return a;
}

const P3_GOAL: Goal = { on: 'ratio', op: '<=', target: 1.2, text: '≤ 1.2×' };
const POLICY_WRITE_GOAL: Goal = { on: 'ratio', op: '<=', target: 2, text: '≤ 2×' };
const RSS_AFTER_FUZZ_GOAL: Goal = { on: 'ratio', op: '<=', target: 1.5, text: '≤ 1.5×' };
const LIST_GOAL: Goal = { on: 'ratio', op: '<=', target: 2, text: '≤ 2×' };
const P5_GOAL: Goal = { on: 'ratio', op: '>=', target: 0.7, text: '≥ 0.7×' };
const CORES_GOAL: Goal = { on: 'ratio', op: 'report', target: 0, text: 'report only' };

/** Runs `fn`; on failure, one "not available" row per expected row. */
async function guarded(label: string, fallback: Array<[string, string, string, Goal?]>, fn: () => Promise<BenchRow[]>): Promise<BenchRow[]> {
  try {
    return await fn();
  } catch (e) {
    progress(`${label} failed: ${reasonOf(e)}`);
    return fallback.map(([bench, id, name, goal]) => notAvailable(bench, id, name, reasonOf(e), goal));
  }
}

/** P3 from `bench/nexus-data.ts`: the 10k-policy GET row gets the goal; the policy-write row (S) its own. */
function p3Rows(rs: BenchResult[]): BenchRow[] {
  return rs.map((r) => {
    if (r.id === 'nexus.authz.get.10k-policies.p50') return row('P3', r, P3_GOAL);
    if (r.id === 's.policy_write.10k') return row('S', r, POLICY_WRITE_GOAL);
    return row('P3', r);
  });
}

/** P5 from `bench/cipher.ts`: the streamed encrypt vs raw createCipheriv gets the goal. */
async function p5(stack: Stack, sb: StackBench, quick: boolean): Promise<BenchRow[]> {
  const rs = await benchCipher(stack, { quick });
  const out = rs.map((r) => row('P5', r, r.id === 'cipher.stream.encrypt.64mib' ? P5_GOAL : undefined));
  progress('P5 context: transport ceiling (64 MiB through a bare https mTLS pipe), alternating with Nexus stream encrypts');
  const client = await stack.client('pilot');
  const viaNexus = async (data: Buffer): Promise<number> => {
    let n = 0;
    for await (const c of await client.encryptStream(data)) n += (c as Buffer).length;
    if (n !== data.length + 29) throw new Error(`stream encrypt returned ${n} bytes`);
    return n;
  };
  out.push(...(await guarded('P5 ceiling', [['P5', 'p5.transport-ceiling', 'transport ceiling']], () => p5Ceiling(sb, viaNexus))));
  return out;
}

async function supplementary(quick: boolean): Promise<BenchRow[]> {
  const out: BenchRow[] = [];
  progress('S crypto core (Shamir split/combine/verify)');
  out.push(...(await guarded('crypto', [['S', 'crypto', 'crypto core']], async () => (await benchCrypto({ budgetMs: quick ? 200 : 1000 })).map((r) => row('S', r)))));
  progress('S store (sqlite group commit vs tx per write, in-process)');
  out.push(...(await guarded('store', [['S', 'store.sqlite', 'sqlite store']], async () => (await benchStore({ budgetMs: quick ? 800 : 3000 })).map((r) => row('S', r)))));
  progress(`S Nexus RSS after hostile load (two fresh stacks, ${quick ? 20 : 60} s of load each)`);
  out.push(...(await guarded('rss after hostile load', [['S', 's.rss.after_fuzz', 'Nexus RSS after hostile load', RSS_AFTER_FUZZ_GOAL]], async () =>
    (await benchHostileRss(quick ? 20 : 60)).map((r) => row('S', r, r.id === 's.rss.after_fuzz' ? RSS_AFTER_FUZZ_GOAL : undefined)))));
  progress(`S bootstrap end to end (${quick ? 1 : 3} fresh stack${quick ? '' : 's'})`);
  out.push(...(await guarded('bootstrap', [['S', 'bootstrap', 'bootstrap end to end (issue 4)']], async () => (await benchBootstrap(quick ? 1 : 3)).map((r) => row('S', r)))));
  if (quick) {
    out.push(notAvailable('S', 'store.postgres', 'postgres store (issue 8)', 'skipped in --quick (starts a PostgreSQL server)'));
    out.push(notAvailable('S', 'ha', 'several Nexus on one PostgreSQL (issue 8)', 'skipped in --quick (starts PostgreSQL and three stacks)'));
  } else {
    progress('S postgres store (throw-away local PostgreSQL)');
    out.push(...(await guarded('postgres', [['S', 'store.postgres', 'postgres store (issue 8)']], async () => {
      return (await benchStorePostgres({ budgetMs: 3000 })).map((r) => row('S', r));
    })));
    progress('S several Nexus on one PostgreSQL (three stacks in turn)');
    out.push(...(await guarded('ha', [['S', 'ha', 'several Nexus on one PostgreSQL (issue 8)']], async () => (await benchHa({ budgetMs: 3000 })).map((r) => row('S', r)))));
  }
  return out;
}

export interface Report {
  startedAt: string;
  durationS: number;
  quick: boolean;
  machine: ReturnType<typeof machine>;
  rows: BenchRow[];
  /** Latency percentile curves in µs: [percentile, µs] pairs per series. */
  curves: Curves;
}

function markdown(r: Report): string {
  const main = r.rows.filter((x) => x.bench !== 'S');
  const supp = r.rows.filter((x) => x.bench === 'S');
  const worst = worstRatio(main);
  return [
    `# Benchmarks${r.quick ? ' (--quick)' : ''}`,
    '',
    `Run ${r.startedAt}, ${r.durationS.toFixed(0)} s. Machine: ${describeMachine(r.machine)}.`,
    '',
    'Stack: spike-agent, 3 Keepers (threshold 2), spike-nexus on SQLite (WAL, synchronous=FULL, group commit), each its own',
    'process, Nexus at its default log level (WARN); clients use the project\'s undici mTLS dispatcher, one connection per',
    'concurrent client, closed loop, no pipelining. Every ratio is value ÷ baseline from this run.',
    '',
    toMarkdown(main),
    '',
    worst ? `${worst.met ? 'Every ratio goal is met; closest to missing' : 'Furthest from its goal'}: **${worst.bench} ${worst.name}** (${worst.ratio?.toFixed(2)}× vs goal ${worst.goal?.text}).` : '',
    '',
    '## Supplementary figures',
    '',
    toMarkdown(supp),
    '',
    '![latency distributions](latency.svg)',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const want = (id: string): boolean => args.only === undefined || args.only.has(id);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const m = machine();
  progress(`${args.quick ? 'quick run' : 'full run'} on ${describeMachine(m)}`);
  progress('starting the stack (spike-agent, 3 Keepers, spike-nexus on SQLite, bootstrap)');
  const stack = await Stack.start({
    identities: { 'bench-app': BENCH_APP_ID },
    // SPIKE_BENCH_NEXUS_NODE_OPTIONS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`): profile Nexus under the load.
    // Every bench client dials from one loopback address. A burst of young handshakes from one
    // address is admitted up to half the handshake budget (admission.ts), and the bench's own
    // dispatchers open at most 8 at a time, so Nexus runs with its default limits.
    nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN', ...(process.env['SPIKE_BENCH_NEXUS_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['SPIKE_BENCH_NEXUS_NODE_OPTIONS'] } : {}) },
    keeperEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' },
  });
  const rows: BenchRow[] = [];
  let curves: Curves = {};
  try {
    const sb = await StackBench.open(stack, { quick: args.quick });
    try {
      if (want('P1') || want('P7')) {
        rows.push(...(await guarded('P1/P7', [['P1', 'p1.get', 'secret GET throughput and latency', { on: 'ratio', op: '>=', target: 0.8, text: '≥ 0.8×' }], ['P7', 'p7.new-connection-get', 'new connection + GET']], () => sb.p1())));
      }
      if (want('P1')) rows.push(...(await guarded('P1 sealed read', [['P1', 'p1.cpu.c32.vs_sealed_read', 'server CPU per warm GET against an echo that also does the sealed store read']], () => sealedReadRows(sb))));
      if (want('P2')) rows.push(...(await guarded('P2', [['P2', 'p2.put', 'secret PUT throughput, 1 and 64 writers', { on: 'ratio', op: '>=', target: 5, text: '≥ 5×' }]], () => sb.p2())));
      if (want('P2')) rows.push(...(await guarded('P2 sealed write', [['P2', 'p2.cpu.c64.vs_sealed_write', 'server CPU per PUT against an echo that also does the sealed store write']], () => sealedWriteRows(sb))));
      if (want('P3')) {
        progress(`P3 authorised GET with 10,000 policies vs none (in-process Nexus, memory store, ${args.quick ? 1 : 3} s each)`);
        rows.push(...(await guarded('P3', [['P3', 'p3.authz', 'authorised GET with 10,000 policies', P3_GOAL]], async () => p3Rows(await benchAuthz(stack, args.quick ? 1000 : 3000)))));
      }
      if (want('P5')) {
        progress('P5 cipher stream encrypt of 64 MiB vs raw createCipheriv');
        rows.push(...(await guarded('P5', [['P5', 'p5.cipher.stream-encrypt', 'cipher stream encrypt of 64 MiB', P5_GOAL]], () => p5(stack, sb, args.quick))));
      }
      if (want('A')) rows.push(...(await guarded('audit', AUDIT_ROWS, () => benchAudit(stack, sb))));
      if (want('P4')) rows.push(...(await guarded('P4', [['P4', 'p4.restart-ready', 'Nexus restart → ready', { on: 'value', op: '<=', target: 1500, text: '≤ 1.5 s' }]], () => p4(sb))));
      if (want('S') || want('LIST')) {
        progress(`S list of one prefix among ${args.quick ? '20,000' : '100,000'} secrets vs among 1,000 (in-process Nexus, sealed SQLite)`);
        rows.push(...(await guarded('list', [['S', 's.list.prefix.100k', 'list of one prefix among 100,000 secrets', LIST_GOAL]], async () =>
          (await benchList(stack, { quick: args.quick })).map((r) => row('S', r, r.id === 's.list.prefix.100k' ? LIST_GOAL : undefined)))));
      }
      if (want('CORES')) {
        rows.push(...(await guarded('cores', [['CORES', 'cores.prototype.2v1', 'several cores: prototype server, 2 workers vs 1', CORES_GOAL]], () => benchCores(sb))));
        if (args.quick && args.only === undefined) {
          rows.push(notAvailable('CORES', 'cores.nexus', 'several cores: spike-nexus, 2 workers vs 1', 'skipped in --quick (starts PostgreSQL and four stacks)', CORES_GOAL));
        } else {
          rows.push(...(await guarded('cores nexus', [['CORES', 'cores.nexus', 'several cores: spike-nexus, 2 workers vs 1', CORES_GOAL]], async () =>
            (await benchCoresNexus({ quick: args.quick })).map((r) => row('CORES', r, CORES_GOAL)))));
        }
      }
      if (want('P6')) rows.push(...(await guarded('P6', [['P6', 'p6.rss', 'RSS of Nexus with 100,000 secrets; idle Keeper']], () => p6(sb))));
      if (want('CLI')) rows.push(...(await guarded('CLI', [['CLI', 'cli.get.wall', '`spike secret get` wall time vs `node -e 0`', CLI_GOAL], ['CLI', 'cli.floor.wall', 'Node\'s own floor for an mTLS CLI vs `node -e 0`']], () => benchCliGet(stack, 10))));
      curves = sb.curves;
    } finally {
      sb.close();
    }
  } finally {
    progress('stopping the stack');
    await stack.stop();
  }
  if (want('S')) rows.push(...(await supplementary(args.quick)));
  // Table order: P1…P7, other labelled rows (A: audit on vs off), the CLI row, then supplementary.
  const order = (b: string): number => (b === 'S' ? 99 : b === 'CLI' ? 60 : /^P\d+$/.test(b) ? Number(b.slice(1)) : 50);
  rows.sort((a, b) => order(a.bench) - order(b.bench));
  m.loadEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const report: Report = { startedAt, durationS: (performance.now() - t0) / 1000, quick: args.quick, machine: m, rows, curves };
  const md = markdown(report);
  process.stdout.write(`${md}\n`);
  const outDir = args.out ?? (args.only === undefined ? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results') : undefined);
  if (outDir !== undefined) {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    fs.writeFileSync(path.join(outDir, 'latest.md'), md);
    if (Object.keys(curves).length > 0) {
      fs.writeFileSync(path.join(outDir, 'latency.svg'), latencySvg(`SPIKE-ts GET latency distributions (${m.nproc} × ${m.cpu}, ${m.node})`, curves));
    }
    progress(`wrote ${path.relative(process.cwd(), outDir) || '.'}/latest.json, latest.md${Object.keys(curves).length > 0 ? ', latency.svg' : ''}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${reasonOf(e)}\n`);
  process.exitCode = 1;
});
