/**
 * `watchSecret`: keeps the current values of one secret in memory by reading it every
 * `intervalMs`, and tells the app when they change (a rotated database password, a new API
 * key) through `onChange`. Opt-in, like `SecretCache`: the latest values stay in this
 * process's memory (as JavaScript strings, which cannot be wiped) until `close()`.
 *
 * A failed read keeps the last good values and is reported to `onError` (never thrown into
 * the event loop); the next tick tries again. Ticks never overlap: the next read is scheduled
 * after the previous one settles. The timer does not keep the process alive.
 */
import { SdkUsageError } from './errors.js';
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
  /** The latest values read, or undefined before the first successful read or after close. */
  readonly current: SecretValues | undefined;
  /** Resolves with the values once the first read succeeded (rejects if closed before). */
  ready(): Promise<SecretValues>;
  /** Stops reading and drops the values held. Idempotent. */
  close(): void;
}

const MAX_INTERVAL_MS = 2 ** 31 - 1;

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
  let resolveReady!: (v: SecretValues) => void;
  let rejectReady!: (e: unknown) => void;
  const readyPromise = new Promise<SecretValues>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  readyPromise.catch(() => undefined); // only a caller of ready() sees the rejection

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
      if (!sameValues(current, values)) {
        current = frozenCopy(values);
        resolveReady(current);
        try {
          opts.onChange?.(current);
        } catch (e) {
          report(e);
        }
      }
    } catch (e) {
      if (!closed) report(e);
    }
    if (!closed) {
      timer = setTimeout(() => void tick(), interval);
      timer.unref();
    }
  };

  const close = (): void => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    current = undefined;
    rejectReady(new SdkUsageError('sdk_closed'));
    unsubscribe();
  };

  let unsubscribe: () => void = () => undefined;
  unsubscribe = onAnyAbort([opts.signal, reader.closeSignal], close);
  if (!closed) void tick();

  return {
    get current() {
      return current;
    },
    ready: () => readyPromise,
    close,
  };
}
