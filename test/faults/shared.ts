/**
 * What every fault scenario shares: the run's options (`--long`, `--only`), one PASS/FAIL line
 * per criterion with the measured figure, and measurements of a Nexus process from outside it:
 * RSS and open file descriptors from /proc/<pid>, the event-loop delay p99 from its /metrics
 * (prom-client's `nodejs_eventloop_lag_p99_seconds`, reset at every scrape, so each scrape
 * gives the p99 since the previous one), and the error lines of its JSON log.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMs, rssMiB } from '../../bench/proc.js';
import { parsePrometheusText } from '../helpers/prom-text.js';

export { sleep };

export interface RunOptions {
  /** Full length (the catalogue's bound) instead of the short form. */
  long: boolean;
}

export interface Criterion {
  name: string;
  pass: boolean;
  /** The measured figure, in words. */
  measured: string;
}

export interface ScenarioResult {
  id: string;
  criteria: Criterion[];
  /** Figures reported without a criterion (request counts, retries, load average). */
  notes: string[];
}

export function criterion(name: string, pass: boolean, measured: string): Criterion {
  return { name, pass, measured };
}

export function printResult(r: ScenarioResult): void {
  for (const n of r.notes) process.stdout.write(`${r.id} note: ${n}\n`);
  for (const c of r.criteria) process.stdout.write(`${r.id} ${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.measured}\n`);
}

export function passed(r: ScenarioResult): boolean {
  return r.criteria.every((c) => c.pass);
}

export function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').trim();
}

/** Progress on stderr (stdout carries only the result lines). */
export function progress(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Resident set size of `pid` in KiB (VmRSS). */
/** VmRSS of `pid` in KiB (bench/proc.ts reads it). */
export function rssKiB(pid: number): number {
  return rssMiB(pid) * 1024;
}

/** Time (ms) the main thread of `pid` spent runnable but waiting for a CPU (/proc/<pid>/task/<pid>/schedstat). */
export function runQueueWaitMs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ');
  return Number(f[1]) / 1e6;
}

/**
 * CPU share (% of one core) of Nexus and of this runner over a phase, the share of the time
 * Nexus's main thread was ready to run but waited for a CPU (other processes on the host), and
 * the runner's own event-loop delay p99: shows whether a latency tail is the server's, the
 * host's or the load generator's.
 */
export function cpuMeter(nexusPid: number): () => string {
  const t0 = performance.now();
  const n0 = cpuMs(nexusPid);
  const q0 = runQueueWaitMs(nexusPid);
  const r0 = process.cpuUsage();
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return () => {
    const wall = performance.now() - t0;
    const r = process.cpuUsage(r0);
    h.disable();
    const nexus = Math.round(((cpuMs(nexusPid) - n0) / wall) * 100);
    const runner = Math.round(((r.user + r.system) / 1000 / wall) * 100);
    const waited = Math.round(((runQueueWaitMs(nexusPid) - q0) / wall) * 100);
    return `CPU: Nexus ${nexus}% of a core (its main thread waited for a CPU ${waited}% of the time), load generator ${runner}%; load generator's event-loop delay p99 ${Math.round(h.percentile(99) / 1e5) / 10} ms`;
  };
}

/** Open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Production's log level (WARN) for Nexus and the Keepers under load: the stack's INFO logs a
 * line per request, which would cost the server CPU and the runner memory.
 */
export const WARN_LOGS: Readonly<Record<string, string>> = { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' };

/**
 * Nexus's environment in the scenarios: production's log level, and
 * `SPIKE_FAULTS_NEXUS_NODE_OPTIONS` as its NODE_OPTIONS when set, to see what a latency tail
 * is made of (e.g. `--perf-basic-prof` for `perf`; V8 flags that NODE_OPTIONS refuses, such as
 * `--trace-gc`, through `--import=<file>` of a module calling `v8.setFlagsFromString`).
 */
export const NEXUS_ENV: Readonly<Record<string, string>> = {
  ...WARN_LOGS,
  ...(process.env['SPIKE_FAULTS_NEXUS_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['SPIKE_FAULTS_NEXUS_NODE_OPTIONS'] } : {}),
};

/** The value of the unlabelled metric `name` at `opsUrl`/metrics. */
export async function metric(opsUrl: string, name: string): Promise<number> {
  const r = await fetch(`${opsUrl}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  // prom-client writes NaN as `Nan` (Prometheus reads it, case-insensitively); the event-loop
  // gauges are NaN when two scrapes come within one 10 ms sample of each other.
  const exp = parsePrometheusText((await r.text()).replace(/ Nan$/gm, ' NaN'));
  const s = exp.samples.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no ${name} in /metrics`);
  return s.value;
}

/**
 * Event-loop delay p99 (ms) since the previous scrape (prom-client resets its histogram at
 * every scrape). It is Node's monitorEventLoopDelay at prom-client's 10 ms resolution, so
 * an idle loop reads about 10 ms: the figure includes the sampling interval.
 */
export async function eventLoopP99Ms(opsUrl: string): Promise<number> {
  return (await metric(opsUrl, 'nodejs_eventloop_lag_p99_seconds')) * 1000;
}

/** JSON log lines at level error or fatal (pino level ≥ 50), whatever the label format. */
export function errorLines(log: string): string[] {
  return linesAtLeast(log, 50);
}

const LEVELS: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** JSON log lines at pino level ≥ `min` (labels or numbers). */
export function linesAtLeast(log: string, min: number): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const raw = (rec as { level?: unknown }).level;
    const level = typeof raw === 'number' ? raw : typeof raw === 'string' ? LEVELS[raw] : undefined;
    if (level !== undefined && level >= min) out.push(line);
  }
  return out;
}

/** A short digest of log lines: `msg` (cause fields) × count. */
export function errorDigest(lines: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) {
    const rec = JSON.parse(l) as Record<string, unknown>;
    // Only fields that name a cause (codes, Keeper numbers), never values or paths.
    const extra = ['event', 'code', 'err', 'reason', 'keeperId', 'alarm'].filter((k) => typeof rec[k] === 'string' || typeof rec[k] === 'number').map((k) => `${k}=${String(rec[k])}`);
    const key = `${String(rec['msg'])}${extra.length > 0 ? ` (${extra.join(' ')})` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n}× ${k}`).join('; ') || 'none';
}

/** p-th quantile (0..1) of `xs` (sorted in place), rounded to 0.1 ms. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  return Math.round(xs[Math.min(xs.length - 1, Math.floor(xs.length * q))]! * 10) / 10;
}


/** Waits for `cond`, polling every 50 ms; throws after `timeoutMs`. */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
