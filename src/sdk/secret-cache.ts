/**
 * `SecretCache`: an opt-in, in-memory read cache for apps that read the same secrets often
 * (a request handler that needs the database password on every call).
 *
 * A value read through the cache is served from memory for `ttlMs`, then dropped by a timer
 * (not merely on the next read), so plaintext stays in this process's memory for at most the
 * TTL after it was fetched, or until `invalidate()` / `close()` / the client's `close()`. Concurrent reads of the same
 * path share one request. Failures are never cached. JavaScript strings cannot be wiped: the
 * cache drops its references, the garbage collector reclaims the memory later — which is why
 * caching is opt-in and the TTL has no default.
 *
 * Every read returns a fresh copy of the values, so a caller that changes its object cannot
 * change what the next caller gets. A caller's `signal` ends that caller's wait only: the shared
 * request carries a signal of the cache's own, so one caller's abort never fails another's read;
 * once every caller waiting for it has given up, the request itself is cancelled. Inspecting or
 * serialising the cache (`console.log(cache)`, `JSON.stringify`) shows its size, never values
 * or paths.
 */
import { SdkUsageError } from './errors.js';
import type { SecretValues, VersionOption } from './types.js';

/**
 * What the cache reads through: a `NexusClient`, or anything with its `getSecret`. When the
 * reader has a `closeSignal` (a `NexusClient` does), closing the reader closes the cache.
 */
export interface SecretReader {
  getSecret(path: string, opts?: VersionOption): Promise<SecretValues>;
  readonly closeSignal?: AbortSignal;
}

/** Runs `fn` once when any of `signals` aborts (now, if one already has); returns the unsubscribe. */
export function onAnyAbort(signals: ReadonlyArray<AbortSignal | undefined>, fn: () => void): () => void {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const off = (): void => {
    for (const s of live) s.removeEventListener('abort', handler);
  };
  const handler = (): void => {
    off();
    fn();
  };
  if (live.some((s) => s.aborted)) {
    fn();
    return () => undefined;
  }
  for (const s of live) s.addEventListener('abort', handler, { once: true });
  return off;
}

export interface SecretCacheOptions {
  /** How long a fetched value is served from memory, in milliseconds (required, ≥ 1). */
  ttlMs: number;
  /** Most paths held at once; the oldest entry is dropped first. Default 1000. */
  maxEntries?: number;
  /** Aborting this signal closes the cache (for instance an app's shutdown signal). */
  signal?: AbortSignal;
}

interface Entry {
  values: SecretValues;
  timer: NodeJS.Timeout;
}

/** A read in flight, shared by its concurrent callers. */
interface Pending {
  promise: Promise<SecretValues>;
  /** Cancels the read once no caller waits for it any more. */
  controller: AbortController;
  waiters: number;
}

const DEFAULT_MAX_ENTRIES = 1000;
/** setTimeout's ceiling (≈ 24.8 days): a longer TTL would fire at once. */
const MAX_TTL_MS = 2 ** 31 - 1;

/** `p`, or a rejection with the signal's reason as soon as `signal` aborts (`p` itself runs on). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function copyOf(values: SecretValues): SecretValues {
  return Object.assign(Object.create(null) as SecretValues, values);
}

function checkPositiveInt(n: unknown, max: number, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max) throw new SdkUsageError('sdk_bad_argument', `${what} must be an integer between 1 and ${max}`);
  return n;
}

export class SecretCache {
  // Real private fields: util.inspect (even with customInspect off) never shows them.
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Pending>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #reader: SecretReader;
  #closed = false;
  /** Bumped by invalidate/close so a read already in flight does not store a stale value. */
  #generation = 0;
  #unsubscribe: () => void = () => undefined;

  constructor(reader: SecretReader, opts: SecretCacheOptions) {
    this.#reader = reader;
    this.#ttlMs = checkPositiveInt(opts?.ttlMs, MAX_TTL_MS, 'ttlMs');
    this.#maxEntries = opts.maxEntries === undefined ? DEFAULT_MAX_ENTRIES : checkPositiveInt(opts.maxEntries, 1_000_000, 'maxEntries');
    this.#unsubscribe = onAnyAbort([opts.signal, reader.closeSignal], () => this.close());
  }

  /** Paths (and versions) currently held in memory. */
  get size(): number {
    return this.#entries.size;
  }

  /** The secret's values: from memory while fresh, else read through and kept for `ttlMs`. */
  async getSecret(path: string, opts: VersionOption = {}): Promise<SecretValues> {
    if (this.#closed) throw new SdkUsageError('sdk_closed');
    opts.signal?.throwIfAborted();
    const key = opts.version === undefined ? `c\0${path}` : `v${opts.version}\0${path}`;
    const hit = this.#entries.get(key);
    if (hit) return copyOf(hit.values);
    let inflight = this.#pending.get(key);
    if (!inflight) {
      // Shared by every concurrent reader of this key: no one caller's signal goes with it.
      const controller = new AbortController();
      const version = opts.version === undefined ? {} : { version: opts.version };
      const entry: Pending = { promise: this.#fetch(key, path, { ...version, signal: controller.signal }), controller, waiters: 0 };
      const settle = (): void => {
        if (this.#pending.get(key) === entry) this.#pending.delete(key);
      };
      entry.promise.then(settle, settle);
      this.#pending.set(key, entry);
      inflight = entry;
    }
    return copyOf(await this.#wait(key, inflight, opts.signal));
  }

  /** Waits for a shared read; the last waiter to give up cancels it (and the next read starts afresh). */
  async #wait(key: string, entry: Pending, signal: AbortSignal | undefined): Promise<SecretValues> {
    entry.waiters++;
    try {
      return await untilAborted(entry.promise, signal);
    } finally {
      entry.waiters--;
      if (entry.waiters === 0 && signal?.aborted === true) {
        if (this.#pending.get(key) === entry) this.#pending.delete(key);
        entry.controller.abort(signal.reason);
      }
    }
  }

  /** What `console.log(cache)` shows: the size, never a value or path. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretCache { size: ${this.#entries.size}, ttlMs: ${this.#ttlMs}${this.#closed ? ', closed' : ''} }`;
  }

  /** What `JSON.stringify(cache)` gives: the size, never a value or path. */
  toJSON(): { size: number; ttlMs: number; closed: boolean } {
    return { size: this.#entries.size, ttlMs: this.#ttlMs, closed: this.#closed };
  }

  async #fetch(key: string, path: string, opts: VersionOption): Promise<SecretValues> {
    const generation = this.#generation;
    const values = copyOf(await this.#reader.getSecret(path, opts));
    // A read that was in flight across invalidate()/close() is returned but not kept; nor is one
    // cancelled meanwhile (a reader may finish it anyway), which a newer read may have replaced.
    if (!this.#closed && generation === this.#generation && opts.signal?.aborted !== true) this.#store(key, values);
    return values;
  }

  #store(key: string, values: SecretValues): void {
    this.#drop(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#drop(oldest.value);
    }
    const timer = setTimeout(() => this.#drop(key), this.#ttlMs);
    timer.unref();
    this.#entries.set(key, { values, timer });
  }

  #drop(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    clearTimeout(e.timer);
    this.#entries.delete(key);
  }

  /** Forgets one path (every cached version of it), or everything when called without one. */
  invalidate(path?: string): void {
    this.#generation++;
    if (path === undefined) {
      for (const key of [...this.#entries.keys()]) this.#drop(key);
      this.#pending.clear();
      return;
    }
    for (const key of [...this.#entries.keys()]) if (key.slice(key.indexOf('\0') + 1) === path) this.#drop(key);
    for (const key of [...this.#pending.keys()]) if (key.slice(key.indexOf('\0') + 1) === path) this.#pending.delete(key);
  }

  /** Drops every value and refuses further reads (`sdk_closed`). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.invalidate();
    this.#closed = true;
    this.#unsubscribe();
  }
}

/** A read cache over `reader` (usually a `NexusClient`); see {@link SecretCache}. */
export function createSecretCache(reader: SecretReader, opts: SecretCacheOptions): SecretCache {
  return new SecretCache(reader, opts);
}
