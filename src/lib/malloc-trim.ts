/**
 * Giving freed native memory back to the system after a burst (issue 17: memory after hostile
 * load), for the long-running servers (Nexus, Keepers).
 *
 * TLS handshakes, HTTP parsing and request bodies are allocated by OpenSSL and Node through
 * glibc's malloc, outside the JavaScript heap. glibc's `free()` returns memory to the system only
 * from the top of a heap, so a burst of connections leaves the heap's inside a patchwork of free
 * chunks that stay resident however long the process then idles. Measured on Nexus 10 s after
 * 30 s of hostile connections (with the deployment units' allocator settings, `allocator.ts`):
 * RSS 94 MiB against 67 MiB idle, the main heap alone 26 MiB (3.8 MiB idle). glibc's
 * `malloc_trim(0)` releases every whole free page inside the heaps: the same process went from
 * 85 to 65 MiB.
 *
 * {@link startMallocTrimmer} samples the process once a second (its RSS and CPU time) and trims
 * when the process is calm (at most a fifth of a core over the last second), its RSS is at least
 * 8 MiB above the lowest it has been since the last trim, and the last trim was at least 5 s ago.
 * A busy process is left alone: its free memory is about to be used again. A trim of a 45 MiB
 * fragmented heap takes 5-8 ms on the event loop.
 *
 * The trim is native/malloc-trim (one N-API function, built when the package is installed). Where
 * it was not built (no compiler at install) or the C library is not glibc, no trimmer starts and
 * the process runs as before, keeping its freed memory.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';
import { packageRoot } from './package-root.js';

/** Runs `malloc_trim(0)`: true if memory was released, undefined where the C library is not glibc. */
export type TrimFn = () => boolean | undefined;

export interface TrimPolicyOptions {
  /** RSS growth above the lowest since the last trim that is worth a trim. */
  readonly growthBytes: number;
  /** The least time between two trims. */
  readonly minGapMs: number;
  /** The most CPU (share of one core over the sample window) at which the process counts as calm. */
  readonly calmCpuShare: number;
}

export const TRIM_POLICY: TrimPolicyOptions & { readonly intervalMs: number } = Object.freeze({
  growthBytes: 8 * 1024 * 1024,
  minGapMs: 5_000,
  calmCpuShare: 0.2,
  intervalMs: 1_000,
});

/** One sample of the process: its RSS, the CPU time it used over the window, and when. */
export interface TrimSample {
  readonly rss: number;
  readonly cpuMicros: number;
  readonly windowMs: number;
  readonly now: number;
}

/** When to trim (see the top); pure, so it is tested without a process to measure. */
export class TrimPolicy {
  #floor = Infinity;
  #lastTrimAt = -Infinity;

  constructor(private readonly o: TrimPolicyOptions = TRIM_POLICY) {}

  /** Takes one sample; true when the process should trim now. */
  shouldTrim(s: TrimSample): boolean {
    if (s.rss < this.#floor) this.#floor = s.rss;
    if (s.cpuMicros > this.o.calmCpuShare * s.windowMs * 1000) return false;
    if (s.now - this.#lastTrimAt < this.o.minGapMs) return false;
    return s.rss - this.#floor >= this.o.growthBytes;
  }

  /** Records a trim: its RSS afterwards is the new floor. */
  trimmed(rssAfter: number, now: number): void {
    this.#floor = rssAfter;
    this.#lastTrimAt = now;
  }
}

/** The addon's path inside the installed package. */
export function mallocTrimAddonPath(root: string): string {
  return path.join(root, 'native', 'malloc-trim', 'build', 'Release', 'malloc_trim.node');
}

/** The addon's trim, or undefined where it was not built or cannot load (not Linux). */
export function loadMallocTrim(): TrimFn | undefined {
  if (process.platform !== 'linux') return undefined;
  const root = packageRoot();
  if (root === undefined) return undefined;
  try {
    const addon = createRequire(import.meta.url)(mallocTrimAddonPath(root.dir)) as { trim?: unknown };
    return typeof addon.trim === 'function' ? (addon.trim as TrimFn) : undefined;
  } catch {
    return undefined; // not built
  }
}

export interface MallocTrimmer {
  /** Trims done, the one at start included. */
  readonly trims: number;
  /** RSS given back by them (the fall of RSS across each trim). */
  readonly releasedBytes: number;
  stop(): void;
}

export interface TrimmerOptions {
  readonly trim?: TrimFn;
  readonly rss?: () => number;
  /** CPU time used by the process so far, in microseconds. */
  readonly cpuMicros?: () => number;
  readonly now?: () => number;
  readonly policy?: Partial<typeof TRIM_POLICY>;
  /** Runs `tick` every `ms` until the returned function is called (default: an unref'd interval). */
  readonly every?: (tick: () => void, ms: number) => () => void;
}

const everyUnref = (tick: () => void, ms: number): (() => void) => {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
};

const processCpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * Starts trimming (see the top) with one trim at once (what start-up freed), or returns
 * undefined where there is no trim (the addon not built, or not glibc), which it logs at debug.
 */
export function startMallocTrimmer(logger: Logger, opts: TrimmerOptions = {}): MallocTrimmer | undefined {
  const trim = opts.trim ?? loadMallocTrim();
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const cpu = opts.cpuMicros ?? processCpuMicros;
  const now = opts.now ?? (() => performance.now());
  const o = { ...TRIM_POLICY, ...opts.policy };
  const policy = new TrimPolicy(o);
  let trims = 0;
  let releasedBytes = 0;
  const run = (): boolean => {
    const before = rss();
    const t0 = now();
    if (trim?.() === undefined) return false;
    const after = rss();
    trims++;
    releasedBytes += Math.max(0, before - after);
    policy.trimmed(after, now());
    logger.debug({ event: 'malloc_trim', rssBeforeMiB: mib(before), rssAfterMiB: mib(after), ms: Math.round((now() - t0) * 10) / 10 }, 'freed native memory given back to the system');
    return true;
  };
  if (!run()) {
    logger.debug({ event: 'malloc_trim_unavailable' }, trim === undefined
      ? 'native/malloc-trim is not built: freed native memory stays with the process after bursts'
      : 'the C library is not glibc: freed native memory stays with the process after bursts');
    return undefined;
  }
  let lastCpu = cpu();
  let lastAt = now();
  const stop = (opts.every ?? everyUnref)(() => {
    const at = now();
    const used = cpu();
    const sample = { rss: rss(), cpuMicros: used - lastCpu, windowMs: at - lastAt, now: at };
    lastCpu = used;
    lastAt = at;
    if (policy.shouldTrim(sample)) run();
  }, o.intervalMs);
  return {
    get trims() {
      return trims;
    },
    get releasedBytes() {
      return releasedBytes;
    },
    stop,
  };
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

let processWide: MallocTrimmer | undefined;

/**
 * The process's one trimmer (`malloc_trim` acts on the whole process): started by the first
 * call, the same one afterwards. Undefined where there is no trim.
 */
export function processTrimmer(logger: Logger): MallocTrimmer | undefined {
  processWide ??= startMallocTrimmer(logger);
  return processWide;
}

/** What the process's trimmer has done, for the metrics; undefined when none runs. */
export function mallocTrimReading(): { trims: number; releasedBytes: number } | undefined {
  return processWide === undefined ? undefined : { trims: processWide.trims, releasedBytes: processWide.releasedBytes };
}
