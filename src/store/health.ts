/**
 * What is wrong with the storage right now, said once and at a bounded rate.
 *
 * A persistent backend (sqlite, postgres) reports every failure with a named cause
 * ({@link StoreFailureCause}) and every success here. The tracker:
 * - keeps the current cause (`current()`, read through {@link storeFailure}) for readiness
 *   probes and metrics; a successful write clears any cause, a successful read clears only
 *   `unreachable` (reads still work on a full or read-only disk). `integrity` here means a
 *   damaged database file; one record failing its check is alarmed per request by the API;
 * - writes ONE error line when a cause starts (or changes), naming it and what to do, then
 *   at most one summary line per interval (default 30 s) while failures go on, with their
 *   count, and one warn line when the store works again (all visible at the default level).
 *   Every kind of line is rate-limited per cause (failures with no named cause under
 *   `unspecified`), also across recoveries: an outage of any length writes at most
 *   (causes + 2) lines per interval, however many requests fail. A failure whose fault
 *   already wrote its own alarm line (`StoreError.alarmed`: a stopped store) is recorded
 *   without any line, so one fault stays one ERROR line.
 * Lines carry the driver's code (e.g. `SQLITE_FULL`, `ECONNREFUSED`), never a path or value.
 */
import type { Logger } from '../lib/index.js';
import { STORE_FAILURE_TEXT, StoreError, type Store, type StoreFailureCause } from './types.js';

/** What an operator can do about each cause (log lines; the CLI has its own wording). */
export const STORE_FAILURE_ADVICE: Record<StoreFailureCause, string> = {
  disk_full: 'free space on the volume that holds the store (or grow it); no restore is needed',
  read_only: 'check that the store volume is mounted read-write and writable by Nexus (or that the database accepts writes); no restore is needed',
  unreachable: 'check that the database server is up and reachable from Nexus, and SPIKE_NEXUS_DATABASE_URL',
  io_error: 'check the disk and the kernel log of the Nexus host',
  integrity: 'a stored record or the database file is damaged; check for tampering or disk faults, restore from backup if it persists',
  timeout: 'the database did not answer within SPIKE_NEXUS_DB_OPERATION_TIMEOUT; check its load, locks and the network path to it',
};

/** The store's current failure, if any. */
export interface StoreFailure {
  cause: StoreFailureCause;
  /** `store unavailable: disk full`, … (the API `message`). */
  text: string;
  /** When this cause was first seen. */
  since: Date;
  /** Failures with this cause since then. */
  failures: number;
  /** The driver's code of the last failure (`SQLITE_FULL`, `ECONNREFUSED`, `53100`…), or ''. */
  driverCode: string;
  /** The store has stopped (a failed log sync or checkpoint): every request is refused until a restart. */
  stopped: boolean;
}

interface StoreHealthOptions {
  /** Minimum gap between two summary lines of one ongoing failure; default 30 s. */
  intervalMs?: number;
  now?: () => number;
}

const DEFAULT_INTERVAL_MS = 30_000;

/** `store unavailable: disk full` — the fixed sentence for a cause. */
export function storeFailureText(cause: StoreFailureCause): string {
  return cause === 'integrity' ? 'store integrity failure' : `store unavailable: ${STORE_FAILURE_TEXT[cause]}`;
}

/** The driver's error code under a StoreError (only codes: a driver message may quote rows). */
export function driverCode(e: unknown): string {
  const c = e instanceof Error ? (e.cause as { code?: unknown } | undefined)?.code : undefined;
  return typeof c === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(c) ? c : '';
}

export class StoreHealth {
  readonly #logger: Logger | undefined;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #current: { cause: StoreFailureCause; since: number; failures: number; driverCode: string; stopped: boolean } | null = null;
  /**
   * Per cause (and `unspecified`: unavailable with no named cause): when its last line was
   * written and how many failures went unlogged since. Kept across recoveries, so a cause
   * that comes and goes (a flapping or black-holed database) still writes at most one line
   * per interval.
   */
  readonly #lines = new Map<string, { lastLine: number; unlogged: number }>();
  #recovered = { lastLine: Number.NEGATIVE_INFINITY, unlogged: 0 };

  constructor(logger: Logger | undefined, opts: StoreHealthOptions = {}) {
    this.#logger = logger;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** True (and the window restarted) when a line for `key` may be written now; else counts one. */
  #due(key: string, now: number): { repeated: number } | null {
    const w = this.#lines.get(key);
    if (w !== undefined && now - w.lastLine < this.#intervalMs) {
      w.unlogged++;
      return null;
    }
    const repeated = w?.unlogged ?? 0;
    this.#lines.set(key, { lastLine: now, unlogged: 0 });
    return { repeated };
  }

  /** Records a failure; errors without a named cause (cas mismatch, locked, busy…) are not a store state. */
  failed(e: unknown): void {
    if (!(e instanceof StoreError)) return;
    // One record failing its check is a per-request security alarm (logged by the API with
    // each occurrence), not a state of the whole store; a damaged file (store_corrupt) is.
    if (e.code === 'store_integrity') return;
    const now = this.#now();
    const code = driverCode(e);
    if (e.failure === undefined) {
      if (e.code !== 'store_unavailable') return;
      const due = this.#due('unspecified', now);
      if (due) this.#logger?.error({ event: 'store_failure', cause: 'unspecified', err: e.code, ...(code ? { code } : {}), repeated: due.repeated }, 'store unavailable');
      return;
    }
    const cause = e.failure;
    const cur = this.#current;
    const starting = cur === null || cur.cause !== cause;
    // A stopped store stays stopped until a restart, whatever fails next.
    if (starting) this.#current = { cause, since: now, failures: 1, driverCode: code, stopped: cur?.stopped === true };
    else {
      cur.failures++;
      if (code) cur.driverCode = code;
    }
    if (e.alarmed) {
      this.#current!.stopped = true; // only a stopped store's errors are alarmed (readiness: store_stopped)
      return; // its fault wrote its own ERROR line: recorded, not said again
    }
    const due = this.#due(cause, now);
    if (due === null) return;
    const c = this.#current!;
    if (starting) {
      this.#logger?.error(
        { event: 'store_failure', cause, err: e.code, ...(code ? { code } : {}), ...(cur && cur.cause !== cause ? { previous: cur.cause } : {}), ...(due.repeated ? { repeated: due.repeated } : {}) },
        `${storeFailureText(cause)}: ${STORE_FAILURE_ADVICE[cause]}`,
      );
      return;
    }
    this.#logger?.error(
      { event: 'store_failure', cause, err: e.code, ...(code ? { code } : {}), failures: c.failures, repeated: due.repeated, sinceMs: now - c.since },
      `${storeFailureText(cause)} (still failing): ${STORE_FAILURE_ADVICE[cause]}`,
    );
  }

  /** Records a success: a write clears any cause, a read only `unreachable`/`timeout`. */
  succeeded(kind: 'read' | 'write'): void {
    const cur = this.#current;
    if (cur === null || (kind === 'read' && cur.cause !== 'unreachable' && cur.cause !== 'timeout')) return;
    this.#current = null;
    const now = this.#now();
    const r = this.#recovered;
    if (now - r.lastLine < this.#intervalMs) {
      r.unlogged++;
      return;
    }
    this.#logger?.warn(
      { event: 'store_recovered', cause: cur.cause, failures: cur.failures, durationMs: now - cur.since, ...(r.unlogged ? { repeated: r.unlogged } : {}) },
      `store works again after: ${STORE_FAILURE_TEXT[cur.cause]}`,
    );
    this.#recovered = { lastLine: now, unlogged: 0 };
  }

  current(): StoreFailure | null {
    const c = this.#current;
    return c === null ? null : { cause: c.cause, text: storeFailureText(c.cause), since: new Date(c.since), failures: c.failures, driverCode: c.driverCode, stopped: c.stopped };
  }
}

/** A store that tracks its failures (the persistent backends). */
interface WithHealth {
  readonly health: StoreHealth;
}

/**
 * The current failure of `store` and its cause, or null when it works (or is a memory/lite
 * store, which cannot fail this way). For readiness probes and metrics.
 */
export function storeFailure(store: Store): StoreFailure | null {
  const h = (store as Partial<WithHealth>).health;
  return h instanceof StoreHealth ? h.current() : null;
}
