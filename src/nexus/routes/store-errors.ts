/**
 * Maps storage errors ({@link StoreError}) to API errors, in one place, for the secret and
 * policy routes. The mapping is stable and part of the documented API:
 *
 * | store code                                   | HTTP | `err`                | `message` / reason        |
 * |----------------------------------------------|------|----------------------|---------------------------|
 * | `store_cas_mismatch`                         | 409  | `api_conflict`       | check-and-set mismatch    |
 * | `store_integrity`                            | 500  | `api_internal_error` | reason `integrity_violation` (alarm logged, no path) |
 * | `store_busy`                                 | 503  | `state_not_ready`    | reason `store_busy` (retry later) |
 * | `store_unavailable` with a named cause       | 503  | `state_not_ready`    | `store unavailable: disk full` / `: read-only storage` / `: database unreachable` / `: I/O error`; reason `store_disk_full` / `store_read_only` / `store_unreachable` / `store_io_error` |
 * | `store_unavailable` (no cause), `store_closed`| 503  | `state_not_ready`    | reason `store_unavailable` |
 * | `store_corrupt` (damaged database file)      | 500  | `api_internal_error` | `store integrity failure`; reason `store_corrupt` |
 * | `store_locked`                               | 503  | `state_not_ready`    | reason `store_locked`     |
 * | `store_unsupported`, `store_invalid_argument`| 400  | `api_bad_request`    | reason = the store code   |
 * | anything else (wrong key, schema, corrupt…)  | 500  | `api_internal_error` | reason = the store code   |
 *
 * Every 503 for a store failure also carries `outcome` (additive) when the backend knows it:
 * `"not_applied"` — nothing was written (a read, a busy store, a transaction whose COMMIT was
 * never sent, or on SQLite one rolled back after a full disk refused its log frames): safe to
 * retry on any instance — or `"unknown"` — a COMMIT was sent and its
 * answer never came. A request refused because the policy-freshness check could not be
 * made ({@link policyCheckUnavailable}) is `not_applied` with the store's cause.
 *
 * 503 is used for transient conditions because every SPIKE client maps 503 to
 * `state_not_ready` ("try again"), which is what a busy or briefly unavailable store means.
 * Messages are fixed sentences; a path or value never reaches them or the log. Store
 * failures with a named cause are logged by the store itself, once per cause and then at a
 * bounded rate (store/health.ts), so a request that meets one logs only at debug here.
 */
import { ApiError, ERR, STORE_FAILURE_MESSAGE, badRequest, conflict } from '../../protocol/index.js';
import type { Logger } from '../../lib/index.js';
import { StoreError } from '../../store/index.js';

const NOT_APPLIED = { outcome: 'not_applied' } as const;

/** The 503 of an unavailable store: its cause's fixed message, and the outcome when known. */
function unavailableAnswer(e: StoreError, outcome: StoreError['outcome']): ApiError {
  const fields = outcome === undefined ? {} : { fields: { outcome } };
  if (e.failure !== undefined) {
    return new ApiError(ERR.notReady, STORE_FAILURE_MESSAGE[e.failure], { reason: `store_${e.failure}`, expose: true, cause: e, ...fields });
  }
  return new ApiError(ERR.notReady, 'store unavailable', { reason: 'store_unavailable', expose: true, cause: e, ...fields });
}

/**
 * The answer to a policy-based request while the policy-freshness check cannot be made:
 * 503 `state_not_ready` with the store's cause, `outcome: "not_applied"` (the request was
 * not run at all). Never a 401: a denial must mean "your policies do not allow this".
 */
export function policyCheckUnavailable(cause: unknown): ApiError {
  const e = cause instanceof StoreError && cause.failure !== undefined ? cause : new StoreError('store_unavailable', { cause });
  return unavailableAnswer(e, 'not_applied');
}

/** Turns a thrown value into an {@link ApiError}; non-store errors are rethrown unchanged. */
function storeErrorToApi(e: unknown, log: Logger): unknown {
  if (!(e instanceof StoreError)) return e;
  switch (e.code) {
    case 'store_cas_mismatch':
      return conflict('check-and-set version does not match');
    case 'store_integrity':
      // Alarm: a stored record failed authentication (tampering, swapped rows, bit rot).
      log.error({ alarm: 'integrity_violation', err: e.code }, 'a stored record failed its integrity check');
      return new ApiError(ERR.internal, 'integrity violation', { reason: 'integrity_violation', expose: true, cause: e });
    case 'store_busy':
      log.debug({ err: e.code }, 'store busy');
      return new ApiError(ERR.notReady, 'store busy, try again', { reason: 'store_busy', expose: true, cause: e, fields: NOT_APPLIED });
    case 'store_unavailable':
    case 'store_closed':
      // Counted and logged at a bounded rate by the store's health tracker (store/health.ts).
      log.debug({ err: e.code, cause: e.failure ?? null }, 'store unavailable');
      return unavailableAnswer(e, e.code === 'store_closed' ? 'not_applied' : e.outcome);
    case 'store_corrupt':
      log.error({ alarm: 'store_corrupt', err: e.code }, 'the database file is damaged');
      return new ApiError(ERR.internal, STORE_FAILURE_MESSAGE.integrity, { reason: 'store_corrupt', expose: true, cause: e });
    case 'store_locked':
      return new ApiError(ERR.notReady, 'not ready', { reason: 'store_locked', cause: e });
    case 'store_unsupported':
      return badRequest(e.code, 'operation not supported');
    case 'store_invalid_argument':
      return badRequest(e.code, 'invalid argument');
    default:
      log.error({ err: e.code }, 'store error');
      return new ApiError(ERR.internal, 'internal error', { reason: e.code, cause: e });
  }
}

/** Runs a store operation, mapping its errors (see module doc). */
export async function viaStore<T>(log: Logger, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw storeErrorToApi(e, log);
  }
}
