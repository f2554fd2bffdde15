/**
 * Shared pieces of `npm run bench`: the result row with its goal, a closed-loop HTTP load
 * generator on an undici dispatcher (one request in flight per worker, no pipelining,
 * latencies in a `perf_hooks` histogram), progress lines on stderr, the machine description,
 * and the Markdown rendering of the result table.
 */
import fs from 'node:fs';
import os from 'node:os';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { BenchResult } from './types.js';

/** A goal on the ratio (or on the value when there is no baseline). */
export interface Goal {
  on: 'ratio' | 'value';
  /** `report`: no pass/fail, the figure is only reported. */
  op: '>=' | '<=' | 'report';
  target: number;
  /** How the goal reads in the table, e.g. `≥ 0.8×`, `≤ 1.5 s`. */
  text: string;
}

/** One row of the report: a {@link BenchResult} plus its benchmark id, goal and verdict. */
export interface BenchRow extends BenchResult {
  /** Issue 7 benchmark id (`P1`…`P7`), `A` for the audit trail on vs off (issue 13), or `S` for supplementary figures. */
  bench: string;
  /** false: the component or bench module is not available; `value` is NaN and `note` says why. */
  available: boolean;
  goal?: Goal;
  /** Whether the goal is met; undefined when there is no goal or no figure. */
  met?: boolean;
}

export function row(bench: string, r: BenchResult, goal?: Goal): BenchRow {
  const out: BenchRow = { bench, available: Number.isFinite(r.value), ...r };
  if (goal !== undefined) {
    out.goal = goal;
    const x = goal.on === 'ratio' ? r.ratio : r.value;
    if (goal.op !== 'report' && x !== undefined && Number.isFinite(x)) out.met = goal.op === '>=' ? x >= goal.target : x <= goal.target;
  }
  return out;
}

export function notAvailable(bench: string, id: string, name: string, reason: string, goal?: Goal): BenchRow {
  const r: BenchRow = { bench, id, name, value: Number.NaN, unit: '', available: false, note: `not available: ${reason}` };
  if (goal !== undefined) r.goal = goal;
  return r;
}

/** A short, value-free reason for a failure (error code and message only). */
export function reasonOf(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${e.message}`.slice(0, 200);
  }
  return 'unknown error';
}

// ------------------------------------------------------------------------------------ progress

const T0 = performance.now();

/** One progress line on stderr, with the time since the run began. */
export function progress(msg: string): void {
  const s = (performance.now() - T0) / 1000;
  process.stderr.write(`[bench ${s.toFixed(1).padStart(6)} s] ${msg}\n`);
}

// ------------------------------------------------------------------------------------ load

export interface LoadSpec {
  dispatcher: Dispatcher;
  origin: string;
  /** Path with query, e.g. `/v1/store/secrets?action=get`. */
  path: string;
  /** Request body of worker `w`'s `i`-th request. */
  body: (w: number, i: number) => string;
  concurrency: number;
  durationMs: number;
  /** Status every answer must have (default 200); others count as errors. */
  status?: number;
  /** Extra request headers (e.g. `connection: close` for a new connection per request). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  ok: number;
  errors: number;
  elapsedMs: number;
  opsPerSec: number;
  /** Latency of each successful request in nanoseconds. */
  hist: RecordableHistogram;
}

/**
 * Closed loop: `concurrency` workers, each sending its next request as soon as the previous
 * answer's body has been read, until `durationMs` ends. Every worker has at most one request
 * in flight, so with a dispatcher of `concurrency` connections each worker has its own
 * connection (undici does not pipeline by default).
 */
export async function closedLoop(spec: LoadSpec): Promise<LoadResult> {
  const hist = createHistogram();
  const want = spec.status ?? 200;
  const headers = { 'content-type': 'application/json', ...(spec.headers ?? {}) };
  let ok = 0;
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  const deadline = start + spec.durationMs;
  await Promise.all(Array.from({ length: spec.concurrency }, async (_, w) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const body = spec.body(w, i);
      const t = process.hrtime.bigint();
      try {
        const r = await spec.dispatcher.request({ origin: spec.origin, path: spec.path, method: 'POST', headers, body });
        await r.body.arrayBuffer();
        if (r.statusCode === want) {
          hist.record(Math.max(1, Number(process.hrtime.bigint() - t)));
          ok++;
        } else {
          errors++;
          firstError ??= new Error(`status ${r.statusCode}`);
        }
      } catch (e) {
        errors++;
        firstError ??= e;
      }
    }
  }));
  const elapsedMs = performance.now() - start;
  if (ok === 0) throw firstError instanceof Error ? firstError : new Error('no successful request');
  return { ok, errors, elapsedMs, opsPerSec: (ok * 1000) / elapsedMs, hist };
}

/** Microseconds at percentile `p` of a nanosecond histogram. */
export function pUs(h: RecordableHistogram, p: number): number {
  return h.percentile(p) / 1000;
}

/** The percentile curve of a nanosecond histogram, in µs, for the JSON file and the plot. */
export const CURVE_POINTS = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100] as const;
export function curveUs(h: RecordableHistogram): Array<[number, number]> {
  return CURVE_POINTS.map((p) => [p, p === 100 ? h.max / 1000 : h.percentile(Math.max(p, 0.0001)) / 1000]);
}

// ------------------------------------------------------------------------------------ machine

export interface Machine {
  nproc: number;
  cpu: string;
  ramGiB: number;
  node: string;
  platform: string;
  /** 1/5/15-minute load averages when the run began and ended (other work skews results). */
  loadStart: number[];
  loadEnd?: number[];
  /** File system type of the temp folder the stack's SQLite file lives in. */
  tmpFs?: string;
}

function fsTypeOf(dir: string): string | undefined {
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    let best: string[] | undefined;
    for (const m of mounts) {
      const mp = m[1];
      if (mp !== undefined && (dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && (best === undefined || mp.length > (best[1] ?? '').length)) best = m;
    }
    return best?.[2];
  } catch {
    return undefined;
  }
}

export function machine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpu = m[1].trim();
  } catch {
    /* not Linux */
  }
  const tmpFs = fsTypeOf(fs.realpathSync(os.tmpdir()));
  return {
    nproc: os.availableParallelism(),
    cpu,
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    loadStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    ...(tmpFs !== undefined ? { tmpFs } : {}),
  };
}

export function describeMachine(m: Machine): string {
  return `${m.nproc} × ${m.cpu}, ${m.ramGiB} GiB RAM, Node ${m.node} (${m.platform}), temp folder on ${m.tmpFs ?? 'unknown fs'}; ` +
    `load average ${m.loadStart.join('/')} at start${m.loadEnd ? `, ${m.loadEnd.join('/')} at end` : ''}`;
}

// ------------------------------------------------------------------------------------ table

export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function toMarkdown(rows: readonly BenchRow[]): string {
  const head = '| id | benchmark | value | unit | baseline | ratio | goal | met? | note |\n|---|---|---:|---|---:|---:|---|---|---|';
  const lines = rows.map((r) => {
    const met = r.met === undefined ? (r.goal && !r.available ? 'n/a' : '') : r.met ? 'yes' : '**no**';
    const value = r.available ? fmt(r.value) : 'not available';
    return `| ${r.bench} | ${cell(r.name)} | ${value} | ${r.unit} | ${fmt(r.baseline)} | ${r.ratio === undefined ? '' : `${fmt(r.ratio)}×`} | ${r.goal?.text ?? ''} | ${met} | ${cell(r.note ?? '')} |`;
  });
  return [head, ...lines].join('\n');
}

/** Among rows with a ratio goal, the one furthest on the wrong side of it (relative). */
export function worstRatio(rows: readonly BenchRow[]): BenchRow | undefined {
  let worst: BenchRow | undefined;
  let score = -Infinity;
  for (const r of rows) {
    if (r.goal?.on !== 'ratio' || r.goal.op === 'report' || r.ratio === undefined || !Number.isFinite(r.ratio)) continue;
    const s = r.goal.op === '>=' ? r.goal.target / r.ratio : r.ratio / r.goal.target;
    if (s > score) {
      score = s;
      worst = r;
    }
  }
  return worst;
}
