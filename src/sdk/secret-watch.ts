/**
 * `watchSecret`: keeps the current values of one secret in memory by reading it every
 * `intervalMs`, and tells the app when they change (a rotated database password, a new API
 * key) through `onChange`. Opt-in, like `SecretCache`: the latest values stay in this
 * process's memory (as JavaScript strings, which cannot be wiped) until `close()`.
 *
 * A failed read is reported to `onError` (never thrown into the event loop). A network failure
 * keeps the last good values; a refusal (the secret was deleted: not found; access was
 * revoked: unauthorized) drops them, so `current` is undefined and `ready()` waits again until
 * a read succeeds: an app never goes on using a secret it may no longer read. Failed reads in
 * a row space the next ones out (doubling, up to a minute or the interval if longer). Ticks
 * never overlap: the next read is scheduled after the previous one settles. The timer does not keep the process alive, except while an
 * app awaits `ready()` (a start-up that waits for its first value must not just exit).
 *
 * `ready()` settles with the first read: the values, or, while there are none yet, that read's
 * refusal (not found, unauthorized, bad request: the watch goes on reading, and a later
 * `ready()` waits for the next read). A network failure keeps it waiting; its `signal` bounds
 * the wait. Inspecting or serialising the watch (`console.log(watch)`, `JSON.stringify`) never
 * shows the values.
 */
import { NexusApiError, SdkUsageError } from './errors.js';
import { onAnyAbort, type SecretReader } from './secret-cache.js';
import type { SecretValues, VersionOption } from './types.js';

export interface WatchSecretOptions {
  /** Time between reads, in milliseconds (required, ≥ 1). */
  intervalMs: number;
  /** Called with the values after the first read and after every change. */
  onChange?: (values: SecretValues) => void;
  /** Called with each failed read (a `NexusApiError` or `SdkUsageError`). */
  onError?: (error: unknown) => void;
  /** Aborting this signal closes the watch (so does closing a reader that has `closeSignal`). */
  signal?: AbortSignal;
  /** A fixed version to watch instead of the current one. */
  version?: VersionOption['version'];
}

export interface SecretWatch {
  /** The latest values read; undefined before the first successful read, after a refusal, or after close. */
  readonly current: SecretValues | undefined;
  /**
   * Resolves with the values once a read succeeded. While there are none yet, rejects with a
   * read's refusal (`api_not_found`, `access_unauthorized`, `api_bad_request`), with
   * `sdk_closed` once closed, or with `signal`'s reason; network failures keep it waiting.
   */
  ready(opts?: { signal?: AbortSignal }): Promise<SecretValues>;
  /** Stops reading and drops the values held. Idempotent. */
  close(): void;
}

const MAX_INTERVAL_MS = 2 ** 31 - 1;
/** Failed reads in a row space the next ones out up to this (or the interval, if longer). */
const MAX_BACKOFF_MS = 60_000;

/** The answers that settle a waiting `ready()`: the path or the caller is wrong, and stays so. */
const REFUSALS: ReadonlySet<string> = new Set(['api_not_found', 'access_unauthorized', 'api_bad_request']);

/** True when both maps hold the same keys with the same values. */
function sameValues(a: SecretValues | undefined, b: SecretValues): boolean {
  if (a === undefined) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function frozenCopy(values: SecretValues): SecretValues {
  return Object.freeze(Object.assign(Object.create(null) as SecretValues, values));
}

/** Starts watching `path` through `reader` (usually a `NexusClient`). */
export function watchSecret(reader: SecretReader, path: string, opts: WatchSecretOptions): SecretWatch {
  const interval = opts?.intervalMs;
  if (typeof interval !== 'number' || !Number.isSafeInteger(interval) || interval < 1 || interval > MAX_INTERVAL_MS) {
    throw new SdkUsageError('sdk_bad_argument', `intervalMs must be an integer between 1 and ${MAX_INTERVAL_MS}`);
  }
  const readOpts: VersionOption = opts.version === undefined ? {} : { version: opts.version };
  let current: SecretValues | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  /** Callers of ready() waiting for the next read's outcome. */
  let waiters: Array<{ resolve: (v: SecretValues) => void; reject: (e: unknown) => void }> = [];
  const settle = (outcome: { values: SecretValues } | { error: unknown }): void => {
    const now = waiters;
    waiters = [];
    timer?.unref();
    for (const w of now) ('values' in outcome ? w.resolve(outcome.values) : w.reject(outcome.error));
  };

  const report = (e: unknown): void => {
    try {
      opts.onError?.(e);
    } catch {
      // A throwing callback must not stop the watch or crash the process.
    }
  };

  const tick = async (): Promise<void> => {
    timer = undefined;
    try {
      const values = await reader.getSecret(path, readOpts);
      if (closed) return;
      failures = 0;
      if (!sameValues(current, values)) {
        current = frozenCopy(values);
        settle({ values: current });
        try {
          opts.onChange?.(current);
        } catch (e) {
          report(e);
        }
      }
    } catch (e) {
      if (!closed) {
        failures++;
        // A refusal drops the values held and answers the apps waiting for a value; a network
        // failure, a 408 or a proxy's 4xx (mapped to net_peer_connection) does neither.
        const refused = e instanceof NexusApiError && REFUSALS.has(e.code) && e.status !== 408;
        if (refused) current = undefined;
        report(e);
        if (refused) settle({ error: e });
      }
    }
    if (!closed) {
      const delay = failures === 0 ? interval : Math.min(Math.max(interval, MAX_BACKOFF_MS), interval * 2 ** Math.min(failures, 20));
      timer = setTimeout(() => void tick(), delay);
      // Only an app awaiting ready() is kept alive by the watch: it is waiting for the next read.
      if (waiters.length === 0) timer.unref();
    }
  };

  const close = (): void => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    current = undefined;
    settle({ error: new SdkUsageError('sdk_closed') });
    unsubscribe();
  };

  let unsubscribe: () => void = () => undefined;
  unsubscribe = onAnyAbort([opts.signal, reader.closeSignal], close);
  if (!closed) void tick();

  const ready = (o: { signal?: AbortSignal } = {}): Promise<SecretValues> => {
    if (closed) return Promise.reject(new SdkUsageError('sdk_closed'));
    if (current !== undefined) return Promise.resolve(current);
    const signal = o.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<SecretValues>((resolve, reject) => {
      const off = (): void => signal?.removeEventListener('abort', onAbort);
      const waiter = {
        resolve: (v: SecretValues): void => {
          off();
          resolve(v);
        },
        reject: (e: unknown): void => {
          off();
          reject(e);
        },
      };
      // A caller that gives up stops waiting, and stops keeping the process alive.
      const onAbort = (): void => {
        waiters = waiters.filter((w) => w !== waiter);
        if (waiters.length === 0) timer?.unref();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.push(waiter);
      timer?.ref();
    });
  };
  const shown = (): string => {
    const n = current === undefined ? 0 : Object.keys(current).length;
    return `SecretWatch { ${closed ? 'closed' : current === undefined ? 'waiting' : `${n} value${n === 1 ? '' : 's'}`} }`;
  };

  return {
    get current() {
      return current;
    },
    ready,
    close,
    toJSON: () => ({ closed, ready: current !== undefined }),
    [Symbol.for('nodejs.util.inspect.custom')]: shown,
  } as SecretWatch;
}
