/**
 * Typed API errors and the wire error codes (api.md §1.2, decisions D1, D15).
 *
 * An {@link ApiError} carries the HTTP status and the wire `err` code. Its `message` is a
 * fixed, non-secret sentence; it is sent to the client as the optional `message` field only
 * when the error was built with `expose: true` (D15). No input value is ever placed in it.
 *
 * Status policy (D1): SPIKE clients (spike-sdk-go) understand only 400, 401, 404 and 503 (any
 * other status becomes `net_peer_connection`). So:
 * - oversize bodies, depth/member caps, duplicate members, bad paths → **400
 *   `api_bad_request`** with a `message` naming the rule ("request body too large", …). There is
 *   no 413 on the wire; {@link REASON} keeps the finer reason for logs and tests.
 * - our additive check-and-set mismatch and restore conflicts → 409 `api_conflict` (D11, D13:
 *   only reachable by clients that use the additive features, so no SPIKE client sees it).
 * - unexpected failures → 500 `api_internal_error` (SPIKE's own code for them).
 */
import { SpikeError } from '../lib/errors.js';

/** Wire `err` codes. The first five are SPIKE's; `api_conflict` is ours (additive). */
export const ERR = {
  badRequest: 'api_bad_request',
  unauthorized: 'access_unauthorized',
  notFound: 'api_not_found',
  internal: 'api_internal_error',
  notReady: 'state_not_ready',
  conflict: 'api_conflict',
} as const;
export type ErrCode = (typeof ERR)[keyof typeof ERR];

/** Default HTTP status per wire code. */
export const STATUS_OF: Readonly<Record<ErrCode, number>> = {
  api_bad_request: 400,
  access_unauthorized: 401,
  api_not_found: 404,
  api_internal_error: 500,
  state_not_ready: 503,
  api_conflict: 409,
};

/**
 * Finer, stable reasons for 400s (and others). They appear in logs and, when exposed, in
 * the `message` field; the wire `err` stays SPIKE's code. `payload_too_large` replaces the
 * 413 a non-SPIKE API would send.
 */
export const REASON = {
  payloadTooLarge: 'payload_too_large',
  invalidJson: 'invalid_json',
  jsonTooDeep: 'json_too_deep',
  jsonTooManyMembers: 'json_too_many_members',
  jsonTooManyElements: 'json_too_many_elements',
  jsonDuplicateMember: 'json_duplicate_member',
  invalidBody: 'invalid_body',
  invalidPath: 'invalid_path',
  invalidName: 'invalid_name',
  invalidPattern: 'invalid_pattern',
  invalidPermission: 'invalid_permission',
  badRoute: 'bad_route',
  badMethod: 'bad_method',
  readFailed: 'body_read_failed',
} as const;
export type Reason = (typeof REASON)[keyof typeof REASON];

export interface ApiErrorOptions {
  /** HTTP status; defaults to {@link STATUS_OF}[code]. */
  status?: number;
  /** Finer reason for logs (and the exposed message). */
  reason?: string;
  /** Send `message` to the client (fixed, non-secret text only). Default false. */
  expose?: boolean;
  /** Close the connection after answering (used when a body was not fully read). */
  closeConnection?: boolean;
  cause?: unknown;
}

/** An error that the router turns into an HTTP answer with `{"err": code}`. */
export class ApiError extends SpikeError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly expose: boolean;
  readonly closeConnection: boolean;

  constructor(code: ErrCode, message: string, opts: ApiErrorOptions = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? STATUS_OF[code];
    this.reason = opts.reason;
    this.expose = opts.expose ?? false;
    this.closeConnection = opts.closeConnection ?? false;
  }

  /** The wire code, typed. */
  get errCode(): ErrCode {
    return this.code as ErrCode;
  }
}

/** 400 `api_bad_request` with an exposed fixed message. */
export function badRequest(reason: string, message: string, extra: Omit<ApiErrorOptions, 'reason'> = {}): ApiError {
  return new ApiError(ERR.badRequest, message, { expose: true, ...extra, reason });
}

/** 401 `access_unauthorized` (never says why: D10). */
export function unauthorized(): ApiError {
  return new ApiError(ERR.unauthorized, 'unauthorized');
}

/** 404 `api_not_found`. */
export function notFound(message = 'not found'): ApiError {
  return new ApiError(ERR.notFound, message);
}

/** 409 `api_conflict` (additive: cas mismatch, restore conflicts). */
export function conflict(message = 'conflict'): ApiError {
  return new ApiError(ERR.conflict, message, { expose: true });
}

/** 500 `api_internal_error`. */
export function internalError(cause?: unknown): ApiError {
  return new ApiError(ERR.internal, 'internal error', cause === undefined ? {} : { cause });
}

/** 503 `state_not_ready`. */
export function notReady(): ApiError {
  return new ApiError(ERR.notReady, 'not ready');
}

/** 400 for a body over the cap; the connection is closed after answering. */
export function payloadTooLarge(): ApiError {
  return badRequest(REASON.payloadTooLarge, 'request body too large', { closeConnection: true });
}

/**
 * An error answered as plain text (stream-mode cipher errors, api.md §1.2/§7): body is
 * `text + "\n"`, `Content-Type: text/plain; charset=utf-8`. `text` must be a fixed code
 * such as `crypto_unsupported_version` or `decryption failed`.
 */
export class PlainTextError extends ApiError {
  readonly text: string;
  constructor(status: number, text: string, opts: Omit<ApiErrorOptions, 'status'> = {}) {
    super(status === 500 ? ERR.internal : ERR.badRequest, text, { ...opts, status });
    this.text = text;
  }
}
