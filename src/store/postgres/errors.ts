/**
 * The `postgres` backend's failure vocabulary: driver/server errors → StoreError codes and
 * causes (never the driver's message: it may quote rows), and the request-deadline helpers
 * the store's plumbing uses (a deadline that passed is the cause `timeout`; a connect that
 * outlives it is released as soon as it completes, never leaked).
 */
import type pg from 'pg';
import { remainingMs } from '../../lib/index.js';
import { StoreError, type StoreFailureCause, type StoreOutcome } from '../types.js';

export function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
}

export function isRetryable(e: unknown): boolean {
  const c = errCode(e);
  return c === '40001' || c === '40P01';
}

/** True for an answer of the server (a SQLSTATE): the connection is still in step and usable. */
export function isServerAnswer(e: unknown): boolean {
  // A SQLSTATE is five digits/capitals and no class starts with 'E'; Node's errno codes
  // (EPIPE, EBUSY, EPERM …) have the same shape and mean the socket broke, not an answer.
  const code = errCode(e);
  return /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('E');
}

/**
 * Maps driver/server/crypto errors onto StoreError codes; StoreErrors pass through.
 * Never copies the driver's message (it may quote row contents) — only the code.
 */
export function pgToStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = errCode(e);
  if (code === 'crypto_decrypt_failed') return new StoreError('store_integrity', { cause: e });
  if (code === '40001' || code === '40P01' || code === '55P03') return new StoreError('store_busy', { cause: e });
  // Connection refused/reset, 08xxx connection exceptions, 57P0x shutdown, 57014 timeout,
  // 53xxx resources, "Connection terminated", client read timeout, pool ended: unavailable,
  // with the cause named when the code names one; `timeout` when the request's deadline passed.
  const failure = deadlinePassed() || isDeadlineTimerError(e) ? 'timeout' : pgFailureOf(code, e);
  return new StoreError('store_unavailable', failure === undefined ? { cause: e } : { cause: e, failure });
}

/** Socket-level errors of a server that cannot be reached (or went away). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED',
]);

/** The cause a server or socket error names: full disk, read-only, unreachable. */
function pgFailureOf(code: string, e: unknown): StoreFailureCause | undefined {
  if (code === '53100') return 'disk_full';
  if (code === '25006') return 'read_only';
  if (code === '58030') return 'io_error';
  if (code === '57014') return 'timeout'; // statement_timeout (SPIKE_NEXUS_DB_OPERATION_TIMEOUT) on the server
  if (UNREACHABLE_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return 'unreachable';
  // The pool and client raise these without a code (the messages are the driver's own).
  const msg = e instanceof Error ? e.message : '';
  if (code === '' && /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error)/.test(msg)) return 'unreachable';
  return undefined;
}

/**
 * Errors raised by a timer set to what was left of the request's deadline. Node runs a
 * timer against the event loop's cached clock, so under load it can fire a few ms before
 * `Date.now()` reaches the deadline: such an error is a timeout even when the clock says
 * there is time left, never "unreachable".
 */
const DEADLINE_TIMERS = new WeakSet<Error>();

/** Marks `e` as raised by a deadline timer; returns it. */
export function deadlineTimerError<E>(e: E): E {
  if (e instanceof Error) DEADLINE_TIMERS.add(e);
  return e;
}

/** Whether `e` was raised by a timer set to what was left of the request's deadline. */
export function isDeadlineTimerError(e: unknown): boolean {
  return e instanceof Error && DEADLINE_TIMERS.has(e);
}

/** True inside a request whose deadline has passed. */
function deadlinePassed(): boolean {
  const left = remainingMs();
  return left !== undefined && left <= 0;
}

/**
 * The time budget of the next database call: what is left of the request's deadline
 * (undefined outside a request: the pool's own timeouts apply). A deadline already passed
 * throws `store_unavailable`/`timeout`, not applied (nothing was sent).
 */
export function budgetMs(): number | undefined {
  const left = remainingMs();
  if (left === undefined) return undefined;
  if (left <= 0) throw new StoreError('store_unavailable', { failure: 'timeout', outcome: 'not_applied' });
  return left;
}

/** Sets the outcome of a store error (the caller knows what was sent). */
export function withOutcome(e: StoreError, outcome: StoreOutcome): StoreError {
  if (e.code === 'store_unavailable' && e.outcome === undefined) e.outcome = outcome;
  return e;
}

/**
 * `pool.connect()` bounded by `ms` (undefined: unbounded here, the pool's connect timeout
 * applies). A connection that arrives after the deadline goes straight back to the pool.
 */
export function connectWithin(pool: pg.Pool, ms: number | undefined): Promise<pg.PoolClient> {
  const p = pool.connect();
  if (ms === undefined) return p;
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(deadlineTimerError(new Error('timeout exceeded when trying to connect')));
    }, ms);
    p.then((client) => {
      clearTimeout(timer);
      if (late) client.release();
      else resolve(client);
    }, (e: unknown) => {
      clearTimeout(timer);
      if (!late) reject(e instanceof Error ? e : new Error('connect failed'));
    });
  });
}
