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
 * {@link startMallocTrimmer} trims once at start, then samples the process once a second (its RSS
 * and CPU time) and trims while it is calm (at most a fifth of a core over the last second): every
 * 5 s while trims give memory back (1 MiB or more) or the RSS has grown since the last one (8 MiB
 * or more: a burst), backing off to once a minute while there is nothing to give back. Free memory
 * is not visible from outside the allocator (RSS stays up when a burst's memory is freed, and a
 * trim's madvised pages still count as free chunks), so the trimmer tries and watches what RSS
 * does. A busy process is left alone: its free memory is about to be used again. The trim runs on
 * libuv's thread pool, but it holds each allocator arena while it releases that arena's pages
 * (about 4 ms for 22 MiB, 50-100 ms for 100-166 MiB), and a `malloc` on the event loop meanwhile
 * waits for it: a large trim still delays the event loop by about its length, which is why it
 * runs only when calm.
 *
 * The trim is native/malloc-trim (one N-API function, built when the package is installed). Where
 * it was not built (no compiler at install), cannot be trusted (see {@link loadMallocTrim}) or the
 * C library is not glibc, no trimmer starts and the process runs as before, keeping its freed
 * memory. Any error while sampling or trimming stops the trimmer; it never stops the process.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';
import { packageRoot } from './package-root.js';

/**
 * Runs `malloc_trim(0)` off the event loop: a promise of true if memory was released, or
 * undefined (at once) where the C library is not glibc.
 */
export type TrimFn = () => Promise<boolean> | undefined;

export interface TrimPolicyOptions {
  /** A trim that gave back this much keeps trims frequent. */
  readonly activityBytes: number;
  /** RSS grown this much above what the last trim left (a burst) makes trims frequent again. */
  readonly growthBytes: number;
  /** The time between two trims while they give memory back. */
  readonly minGapMs: number;
  /** The longest time between two trims of a calm process (the back-off's ceiling). */
  readonly maxGapMs: number;
  /** The most CPU (share of one core over the sample window) at which the process counts as calm. */
  readonly calmCpuShare: number;
}

export const TRIM_POLICY: TrimPolicyOptions & { readonly intervalMs: number } = Object.freeze({
  activityBytes: 1024 * 1024,
  growthBytes: 8 * 1024 * 1024,
  minGapMs: 5_000,
  maxGapMs: 60_000,
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
  /** The lowest RSS since the last trim (its RSS right after it). */
  #floor = Infinity;
  #lastTrimAt = -Infinity;
  #gap: number;

  constructor(private readonly o: TrimPolicyOptions = TRIM_POLICY) {
    this.#gap = o.minGapMs;
  }

  /** The time the next trim waits for after the last one (for tests and logs). */
  get gapMs(): number {
    return this.#gap;
  }

  /** Takes one sample; true when the process should trim now. */
  shouldTrim(s: TrimSample): boolean {
    if (s.rss < this.#floor) this.#floor = s.rss;
    if (s.rss - this.#floor >= this.o.growthBytes) this.#gap = this.o.minGapMs; // a burst since the last trim
    // A window that is not a positive number of ms (a clock that stood still or went back) cannot show calm.
    if (!(s.windowMs > 0) || !(s.cpuMicros <= this.o.calmCpuShare * s.windowMs * 1000)) return false;
    return s.now - this.#lastTrimAt >= this.#gap;
  }

  /** Records a trim and the RSS before and after it: one that gave little back doubles the wait. */
  trimmed(rssBefore: number, rssAfter: number, now: number): void {
    this.#gap = rssBefore - rssAfter >= this.o.activityBytes ? this.o.minGapMs : Math.min(this.#gap * 2, this.o.maxGapMs);
    this.#floor = rssAfter;
    this.#lastTrimAt = now;
  }
}

/** The addon's path inside the installed package. */
export function mallocTrimAddonPath(root: string): string {
  return path.join(root, 'native', 'malloc-trim', 'build', 'Release', 'malloc_trim.node');
}

/** Whether only `uid` can write `st` (a file or folder). */
const ownerOnly = (st: fs.Stats, uid: number): boolean => st.uid === uid && (st.mode & 0o022) === 0;

/**
 * The addon's trim, or why there is none: `not_built`, `not_linux`, `untrusted` (the file, or a
 * folder between the package root and it, is a symlink, or is not owned by the package.json's
 * owner, or others can write it: compiled code is loaded only from where the package's own owner
 * put it; native/build.mjs leaves its output without group or other write).
 */
export function loadMallocTrim(): TrimFn | 'not_built' | 'not_linux' | 'untrusted' {
  if (process.platform !== 'linux') return 'not_linux';
  const root = packageRoot();
  return root === undefined ? 'not_built' : loadMallocTrimFrom(root.dir);
}

/** {@link loadMallocTrim} from the package folder `rootDir` (exported for tests). */
export function loadMallocTrimFrom(rootDir: string): TrimFn | 'not_built' | 'untrusted' {
  const file = mallocTrimAddonPath(rootDir);
  try {
    const owner = fs.statSync(path.join(rootDir, 'package.json')).uid;
    const st = fs.lstatSync(file);
    if (!st.isFile() || !ownerOnly(st, owner)) return 'untrusted';
    for (let dir = path.dirname(file); dir.length > rootDir.length; dir = path.dirname(dir)) {
      const d = fs.lstatSync(dir);
      if (!d.isDirectory() || !ownerOnly(d, owner)) return 'untrusted';
    }
  } catch {
    return 'not_built';
  }
  try {
    const addon = createRequire(import.meta.url)(file) as { trim?: unknown };
    return typeof addon.trim === 'function' ? (addon.trim as TrimFn) : 'not_built';
  } catch {
    return 'not_built'; // built for another Node, or damaged
  }
}

export interface MallocTrimmer {
  /** False once stopped (by stop(), or by an error). */
  readonly active: boolean;
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

const WHY_NOT: Record<'not_built' | 'not_linux' | 'untrusted', string> = {
  not_built: 'native/malloc-trim is not built (the package\'s install script needs Python, make and a C compiler): freed native memory stays with the process after bursts',
  not_linux: 'malloc_trim is Linux-only: freed native memory stays with the process after bursts',
  untrusted: 'native/malloc-trim is not loaded: it, or its folder, is a symlink or can be written by someone other than the package\'s owner',
};

/**
 * Starts trimming (see the top) with one trim at once (what start-up freed), or returns
 * undefined where there is no trim, which it logs (at warn where the addon is missing or not
 * trusted, at info where the C library is not glibc).
 */
export function startMallocTrimmer(logger: Logger, opts: TrimmerOptions = {}): MallocTrimmer | undefined {
  const loaded = opts.trim ?? loadMallocTrim();
  if (typeof loaded === 'string') {
    logger[loaded === 'not_linux' ? 'info' : 'warn']({ event: 'malloc_trim_unavailable', reason: loaded }, WHY_NOT[loaded]);
    return undefined;
  }
  const trim = loaded;
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const cpu = opts.cpuMicros ?? processCpuMicros;
  const now = opts.now ?? (() => performance.now());
  const o = { ...TRIM_POLICY, ...opts.policy };
  const policy = new TrimPolicy(o);
  let trims = 0;
  let releasedBytes = 0;
  let running = false;
  let stopped = false;
  let stopTimer = (): void => undefined;
  const stop = (): void => {
    stopped = true;
    stopTimer();
  };
  const failed = (e: unknown): void => {
    stop();
    const err = e instanceof Error ? ((e as NodeJS.ErrnoException).code ?? e.message) : 'error';
    logger.warn({ event: 'malloc_trim_stopped', err }, 'giving freed native memory back stopped after an error');
  };
  /** Starts one trim; false where the C library is not glibc. */
  const run = (): boolean => {
    const before = rss();
    const t0 = now();
    const pending = trim();
    if (pending === undefined) return false;
    running = true;
    pending.then((released) => {
      running = false;
      if (stopped) return;
      const after = rss();
      trims++;
      releasedBytes += Math.max(0, before - after);
      policy.trimmed(before, after, now());
      logger.debug({ event: 'malloc_trim', released, rssBeforeMiB: mib(before), rssAfterMiB: mib(after), ms: Math.round((now() - t0) * 10) / 10 }, 'freed native memory given back to the system');
    }).catch(failed);
    return true;
  };
  try {
    if (!run()) {
      logger.info({ event: 'malloc_trim_unavailable', reason: 'not_glibc' }, 'the C library is not glibc: freed native memory stays with the process after bursts');
      return undefined;
    }
  } catch (e) {
    failed(e);
    return undefined;
  }
  let lastCpu = cpu();
  let lastAt = now();
  stopTimer = (opts.every ?? everyUnref)(() => {
    try {
      const at = now();
      const used = cpu();
      const sample = { rss: rss(), cpuMicros: used - lastCpu, windowMs: at - lastAt, now: at };
      lastCpu = used;
      lastAt = at;
      if (!running && !stopped && policy.shouldTrim(sample)) run();
    } catch (e) {
      failed(e);
    }
  }, o.intervalMs);
  return {
    get active() {
      return !stopped;
    },
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

/** The process's trimmer: undefined until started, null where there is none. */
let processWide: MallocTrimmer | null | undefined;

/**
 * The process's one trimmer (`malloc_trim` acts on the whole process): started by the first
 * call, the same one afterwards. Undefined where there is no trim.
 */
export function processTrimmer(logger: Logger): MallocTrimmer | undefined {
  processWide ??= startMallocTrimmer(logger) ?? null;
  return processWide ?? undefined;
}

/** What the process's trimmer has done, for the metrics (read live); undefined when none runs. */
export function mallocTrimReading(): Readonly<Pick<MallocTrimmer, 'active' | 'trims' | 'releasedBytes'>> | undefined {
  return processWide ?? undefined;
}
