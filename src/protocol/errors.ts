/**
 * SPIKE's wire error codes and how SPIKE's errors map onto the HTTP toolkit (D1,
 * D15). Loading this module chooses these codes for every error the toolkit
 * raises ({@link useErrorCodes}), so SPIKE code imports its errors from here.
 *
 * Status policy (D1): SPIKE clients (spike-sdk-go) understand only 400, 401, 404 and 503 (any
 * other status becomes `net_peer_connection`). So:
 * - oversize bodies, depth/member caps, duplicate members, bad paths → **400
 *   `api_bad_request`** with a `message` naming the rule ("request body too large", …). There is
 *   no 413 on the wire; {@link REASON} keeps the finer reason for logs and tests.
 * - our additive check-and-set mismatch and restore conflicts → 409 `api_conflict` (D11, D13:
 *   only reachable by clients that use the additive features, so no SPIKE client sees it).
 * - unexpected failures → 500 `api_internal_error` (SPIKE's own code for them).
 * - a JSON body still arriving at the body deadline → 408 `api_bad_request` ("request body
 *   timed out"; SEC-02). SPIKE had no body deadline, so no SPIKE client relies on an answer
 *   here; 408 tells the sender it was too slow, not that its request was malformed.
 * - a JSON request declaring a charset other than UTF-8 → 415 `api_bad_request` (SEC-17);
 *   spike-sdk-go always sends `application/json` without a charset.
 * A `message` is sent only for errors built with `expose: true` (D15).
 */
import { REASON as HTTP_REASON, useErrorCodes } from '../http/index.js';

/** Wire `err` codes, one per failure kind. The first five are SPIKE's; `api_conflict` is ours (additive). */
export const ERR = {
  badRequest: 'api_bad_request',
  unauthorized: 'access_unauthorized',
  notFound: 'api_not_found',
  internal: 'api_internal_error',
  notReady: 'state_not_ready',
  conflict: 'api_conflict',
} as const;
export type ErrCode = (typeof ERR)[keyof typeof ERR];

useErrorCodes(ERR);

/** The body of the 400 for a request Node's HTTP parser refuses before any route sees it (Nexus, Keepers). */
export const MALFORMED_REQUEST_BODY = JSON.stringify({ err: ERR.badRequest });
/** The body of the last-resort 500 when the router itself fails (Nexus, Keepers). */
export const INTERNAL_ERROR_BODY = JSON.stringify({ err: ERR.internal });

/**
 * Finer, stable reasons for 400s (and others): the toolkit's, plus SPIKE's input grammars.
 * They appear in logs and, when exposed, in the `message` field; the wire `err` stays
 * SPIKE's code. `payload_too_large` replaces the 413 a non-SPIKE API would send.
 */
export const REASON = {
  ...HTTP_REASON,
  invalidPath: 'invalid_path',
  invalidName: 'invalid_name',
  invalidPattern: 'invalid_pattern',
  invalidPermission: 'invalid_permission',
} as const;
export type Reason = (typeof REASON)[keyof typeof REASON];

/**
 * The exposed `message` of a store failure whose cause Nexus could name (503
 * `state_not_ready`, except `integrity`: 500 `api_internal_error`). Clients match these
 * exact sentences to give advice that fits (free disk space, check the mount, check the
 * database) instead of a generic "not ready".
 */
export const STORE_FAILURE_MESSAGE = {
  disk_full: 'store unavailable: disk full',
  read_only: 'store unavailable: read-only storage',
  unreachable: 'store unavailable: database unreachable',
  io_error: 'store unavailable: I/O error',
  integrity: 'store integrity failure',
  timeout: 'store unavailable: database timed out',
} as const;

/**
 * The exposed `message` of a request refused because its audit entry could not be written
 * (503 `state_not_ready`; docs/audit.md), naming the cause when Nexus can: the fix is on the
 * audit log's disk, never a restore.
 */
export const AUDIT_FAILURE_MESSAGE = {
  disk_full: 'audit log unavailable: disk full',
  read_only: 'audit log unavailable: read-only storage',
  io_error: 'audit log unavailable: I/O error',
  closed: 'audit log unavailable',
} as const;
export type AuditFailureKind = keyof typeof AUDIT_FAILURE_MESSAGE;

/**
 * The storage failures a client can name from an answer's `message`: the store's, and the
 * audit log's (`audit_disk_full` …; a refused audit entry is a storage problem on another
 * volume, with advice of its own).
 */
export type StoreFailureKind = keyof typeof STORE_FAILURE_MESSAGE | `audit_${Exclude<AuditFailureKind, 'closed'>}`;

/** The storage failure an exposed `message` names, if it is exactly one of the sentences above. */
export function storeFailureFromMessage(message: unknown): StoreFailureKind | undefined {
  if (typeof message !== 'string') return undefined;
  for (const [k, v] of Object.entries(STORE_FAILURE_MESSAGE)) if (v === message) return k as StoreFailureKind;
  for (const [k, v] of Object.entries(AUDIT_FAILURE_MESSAGE)) if (v === message && k !== 'closed') return `audit_${k}` as StoreFailureKind;
  return undefined;
}

export { ApiError, PlainTextError, badRequest, conflict, notFound, notReady, payloadTooLarge } from '../http/index.js';
