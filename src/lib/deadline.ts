/**
 * One database deadline per request (SPIKE_NEXUS_DB_OPERATION_TIMEOUT): Nexus starts every
 * request inside {@link runWithDeadline}; every database call made on behalf of that request
 * — the policy-freshness check, the connect, each statement of a transaction — reads the
 * same absolute deadline through {@link remainingMs}, so two calls in a row can never wait
 * twice the timeout. Outside a request (start-up, background jobs) there is no deadline and
 * each backend applies its own per-operation timeout. Work a request merely *triggers* but
 * that outlives it (a reload retried later, what runs once a restored key is in) must start
 * through {@link outsideRequest}: timers and callbacks otherwise inherit the request's
 * deadline and would fail at once for ever after it passed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<number>();

/** Runs `fn` with a deadline `ms` from now (`ms` ≤ 0: no deadline). */
export function runWithDeadline<T>(ms: number, fn: () => T): T {
  if (!(ms > 0)) return fn();
  return current.run(Date.now() + ms, fn);
}

/** Milliseconds left before the current request's deadline; undefined outside a request. */
export function remainingMs(): number | undefined {
  const at = current.getStore();
  return at === undefined ? undefined : at - Date.now();
}

/** Runs `fn` with no request deadline (background work started from within a request). */
export function outsideRequest<T>(fn: () => T): T {
  return current.exit(fn);
}
