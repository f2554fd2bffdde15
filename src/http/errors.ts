/**
 * Typed HTTP errors: what the router turns into an error answer.
 *
 * An {@link ApiError} carries the HTTP status and the wire `err` code. Its `message` is a
 * fixed, non-secret sentence; it is sent to the client as the optional `message` field only
 * when the error was built with `expose: true`. No input value is ever placed in it.
 *
 * The toolkit raises errors of a few kinds itself (bad request, unauthorised, not ready,
 * internal, …). Which wire code each kind carries is the application's choice, made once at
 * start-up with {@link useErrorCodes} (the application's error module does it when loaded);
 * until then neutral codes are used. The status of a kind is fixed here
 * ({@link ERROR_KIND_STATUS}); an over-size body is a 400 with the reason
 * `payload_too_large`, never a 413 (some clients understand only a handful of statuses).
 * {@link REASON} holds the finer, stable reasons the toolkit gives (for logs and the exposed
 * message); applications add their own.
 */
import { SpikeError } from '../lib/index.js';

/** The failure kinds, each with its HTTP status. */
const ERROR_KIND_STATUS = Object.freeze({
  badRequest: 400,
  unauthorized: 401,
  notFound: 404,
  conflict: 409,
  internal: 500,
  notReady: 503,
} as const);
type ErrorKind = keyof typeof ERROR_KIND_STATUS;

/** The wire code of every failure kind. */
type ErrorCodes = Readonly<Record<ErrorKind, string>>;

const KINDS = Object.keys(ERROR_KIND_STATUS) as ErrorKind[];

/** Used until the application chooses its codes. */
const NEUTRAL_CODES: ErrorCodes = Object.freeze({
  badRequest: 'bad_request',
  unauthorized: 'unauthorized',
  notFound: 'not_found',
  conflict: 'conflict',
  internal: 'internal_error',
  notReady: 'not_ready',
});

let codes: ErrorCodes = NEUTRAL_CODES;
let chosen = false;

/**
 * Chooses the wire code of every failure kind, once per process (choosing the same codes
 * again is a no-op; different ones throw). Codes must be distinct non-empty strings.
 */
export function useErrorCodes(next: ErrorCodes): void {
  if (chosen) {
    if (KINDS.every((k) => codes[k] === next[k])) return;
    throw new Error('the error codes were already chosen');
  }
  const values = KINDS.map((k) => next[k]);
  if (values.some((v) => typeof v !== 'string' || v.length === 0) || new Set(values).size !== values.length) {
    throw new TypeError('error codes must be distinct non-empty strings');
  }
  codes = Object.freeze(Object.fromEntries(KINDS.map((k) => [k, next[k]])) as Record<ErrorKind, string>);
  chosen = true;
}

/** Throws unless the application chose its wire codes: a router must never answer with the neutral ones by accident. */
export function assertErrorCodesChosen(): void {
  if (!chosen) throw new Error('choose the wire error codes (useErrorCodes) before creating a router');
}

/** The wire code of a failure kind. */
export function errorCode(kind: ErrorKind): string {
  return codes[kind];
}

/** The status of a wire code (its kind's); 500 for a code of no kind. */
function statusOf(code: string): number {
  for (const k of KINDS) if (codes[k] === code) return ERROR_KIND_STATUS[k];
  return 500;
}

/**
 * The reasons the toolkit gives. They appear in logs and, when exposed, in the `message`
 * field; the wire `err` stays the kind's code.
 */
export const REASON = {
  payloadTooLarge: 'payload_too_large',
  invalidJson: 'invalid_json',
  jsonTooDeep: 'json_too_deep',
  jsonTooManyMembers: 'json_too_many_members',
  jsonTooManyElements: 'json_too_many_elements',
  jsonDuplicateMember: 'json_duplicate_member',
  invalidBody: 'invalid_body',
  badRoute: 'bad_route',
  badMethod: 'bad_method',
  readFailed: 'body_read_failed',
  bodyTimeout: 'body_timeout',
  bodyTooSlow: 'body_too_slow',
  unsupportedCharset: 'unsupported_charset',
} as const;

interface ApiErrorOptions {
  /** HTTP status; defaults to the status of the code's kind. */
  status?: number;
  /** Finer reason for logs (and the exposed message). */
  reason?: string;
  /** Send `message` to the client (fixed, non-secret text only). Default false. */
  expose?: boolean;
  /** Close the connection after answering (used when a body was not fully read). */
  closeConnection?: boolean;
  /** Extra fixed fields of the JSON error body, after `message` (additive facts, e.g. a write's outcome). */
  fields?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/** An error that the router turns into an HTTP answer with the route's error shape. */
export class ApiError extends SpikeError {
  readonly status: number;
  readonly reason: string | undefined;
  readonly expose: boolean;
  readonly closeConnection: boolean;
  readonly fields: Readonly<Record<string, string>> | undefined;

  constructor(code: string, message: string, opts: ApiErrorOptions = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? statusOf(code);
    this.reason = opts.reason;
    this.expose = opts.expose ?? false;
    this.closeConnection = opts.closeConnection ?? false;
    this.fields = opts.fields;
  }
}

/** 400 with an exposed fixed message. */
export function badRequest(reason: string, message: string, extra: Omit<ApiErrorOptions, 'reason'> = {}): ApiError {
  return new ApiError(errorCode('badRequest'), message, { expose: true, ...extra, reason });
}

/** 401 (never says why). */
export function unauthorized(): ApiError {
  return new ApiError(errorCode('unauthorized'), 'unauthorized');
}

/** 404. */
export function notFound(message = 'not found'): ApiError {
  return new ApiError(errorCode('notFound'), message);
}

/** 409 with an exposed message. */
export function conflict(message = 'conflict'): ApiError {
  return new ApiError(errorCode('conflict'), message, { expose: true });
}

/** 500. */
export function internalError(cause?: unknown): ApiError {
  return new ApiError(errorCode('internal'), 'internal error', cause === undefined ? {} : { cause });
}

/** 503. */
export function notReady(): ApiError {
  return new ApiError(errorCode('notReady'), 'not ready');
}

/** 400 for a body over the cap; the connection is closed after answering. */
export function payloadTooLarge(): ApiError {
  return badRequest(REASON.payloadTooLarge, 'request body too large', { closeConnection: true });
}

/** 400 for a request body that could not be read (client gone, stream error); closes. */
export function readFailed(): ApiError {
  return badRequest(REASON.readFailed, 'failed to read request body', { closeConnection: true });
}

/**
 * 408 for a request body that did not arrive within the body deadline (a client trickling
 * its body); the code is the bad-request kind's, the status 408 (SEC-02). Closes.
 */
export function bodyTimeout(): ApiError {
  return new ApiError(errorCode('badRequest'), 'request body timed out', { status: 408, expose: true, reason: REASON.bodyTimeout, closeConnection: true });
}

/**
 * 408 for a stream body arriving below the minimum pace while the server waits for it
 * (body-pace.ts; FI-08); the code is the bad-request kind's. Closes.
 */
export function bodyTooSlow(): ApiError {
  return new ApiError(errorCode('badRequest'), 'request body too slow', { status: 408, expose: true, reason: REASON.bodyTooSlow, closeConnection: true });
}

/**
 * 415 for a JSON request that declares a charset other than UTF-8 (SEC-17); the code is the
 * bad-request kind's. Answered before the body is read (the router's linger discards it).
 */
export function unsupportedMediaType(): ApiError {
  return new ApiError(errorCode('badRequest'), 'request body must be UTF-8 JSON', { status: 415, expose: true, reason: REASON.unsupportedCharset });
}

/**
 * An error answered as plain text: body is `text + "\n"`, `Content-Type: text/plain;
 * charset=utf-8`. `text` must be a fixed code or sentence, never input.
 */
export class PlainTextError extends ApiError {
  readonly text: string;
  constructor(status: number, text: string, opts: Omit<ApiErrorOptions, 'status'> = {}) {
    super(errorCode(status === 500 ? 'internal' : 'badRequest'), text, { ...opts, status });
    this.text = text;
  }
}
