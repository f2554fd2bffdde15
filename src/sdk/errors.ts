/**
 * Typed errors of the Node SDK.
 *
 * `NexusApiError` is what every failed call to SPIKE Nexus throws. Its `code` follows the Go
 * SDK's interpretation of the HTTP status so that callers and the CLI can switch
 * on one stable set of codes:
 *
 *   400 → api_bad_request · 401 → access_unauthorized · 404 → api_not_found ·
 *   409 → api_conflict · 413 → api_bad_request · 503 → state_not_ready ·
 *   any other status (incl. 500) → net_peer_connection ·
 *   200 with a non-empty `err` → that code if it is a known one, else gen_general_failure.
 *
 * `wireErr` carries the `err` code from the response body when Nexus sent one (e.g.
 * `shamir_verify_failed`, `invalid_path`), so a caller can be more specific than the status.
 * It is only kept when it looks like a code (`[a-z0-9_]{1,64}`). `storeFailure` names the
 * store failure when the body's `message` is exactly one of the fixed sentences of
 * `STORE_FAILURE_MESSAGE` (disk full, read-only, unreachable…); no other part of a response
 * body is ever copied into an error. Messages are fixed per code and never echo input values;
 * a connection failure adds the configured Nexus URL(s) and the cause class (`failure.ts`).
 *
 * Every `NexusApiError` from a request says where it went: `url`, the Nexus instance as
 * configured (`https://nexus:8553`), and `route`, the route and `action`
 * (`/v1/store/secrets?action=get`). Neither can hold a secret value or path: those travel in
 * request bodies only, never in URLs. `cause` is the
 * underlying network or TLS error when no answer arrived; it is never set from a response
 * body (a JSON parse error would quote the body).
 *
 * `SdkUsageError` is thrown before any request is sent when a caller's arguments are invalid
 * (bad URL list, version number out of range, wrong shard length …).
 */
import { SpikeError } from '../lib/index.js';
import type { StoreFailureKind } from '../protocol/curve-free.js';
import { failureText, type FailedAttempt, type Failure } from './failure.js';

/** Stable SDK error codes and their fixed messages. */
export const SDK_ERROR_MESSAGES = {
  api_bad_request: 'SPIKE Nexus rejected the request as invalid',
  access_unauthorized: 'SPIKE Nexus refused access for this identity',
  api_not_found: 'the requested entity was not found',
  api_conflict: 'the request conflicts with the current state',
  state_not_ready: 'SPIKE Nexus is not ready',
  net_peer_connection: 'failed to talk to SPIKE Nexus',
  net_reading_response_body: 'failed to read the response body',
  data_unmarshal_failure: 'failed to parse the response of SPIKE Nexus',
  api_internal_error: 'SPIKE Nexus reported an internal error',
  gen_general_failure: 'SPIKE Nexus reported an error',
  tls_peer_rejected: 'could not trust the server as SPIKE Nexus',
} as const;

export type SdkErrorCode = keyof typeof SDK_ERROR_MESSAGES;

/** Codes a 200 response may carry in `err` that keep their own identity (others → gen_general_failure). */
const KNOWN_BODY_CODES: ReadonlySet<string> = new Set<SdkErrorCode>([
  'api_bad_request',
  'access_unauthorized',
  'api_not_found',
  'api_conflict',
  'state_not_ready',
  'api_internal_error',
]);

const WIRE_CODE_RE = /^[a-z0-9_]{1,64}$/;

/** Returns `s` if it looks like a wire error code, otherwise undefined. */
export function sanitizeWireCode(s: unknown): string | undefined {
  return typeof s === 'string' && WIRE_CODE_RE.test(s) ? s : undefined;
}

/** Longest server explanation kept in {@link NexusApiError.detail}. */
export const DETAIL_MAX = 200;

/** An error body's `message`, if it is short printable ASCII (anything else is dropped, not cut). */
export function sanitizeDetail(s: unknown): string | undefined {
  return typeof s === 'string' && s.length > 0 && s.length <= DETAIL_MAX && /^[\x20-\x7e]+$/.test(s) ? s : undefined;
}

/** Maps an HTTP status to the SDK code, as the Go SDK does, plus 409. */
export function codeForStatus(status: number): SdkErrorCode {
  switch (status) {
    case 400:
    case 413:
      return 'api_bad_request';
    case 401:
    case 403:
      return 'access_unauthorized';
    case 404:
      return 'api_not_found';
    case 409:
      return 'api_conflict';
    case 503:
      return 'state_not_ready';
    default:
      return 'net_peer_connection';
  }
}

/** Maps a non-empty `err` of a 200 response to the SDK code. */
export function codeForBodyErr(err: string): SdkErrorCode {
  return KNOWN_BODY_CODES.has(err) ? (err as SdkErrorCode) : 'gen_general_failure';
}

function messageFor(code: SdkErrorCode, attempts: readonly FailedAttempt[], retriedMs: number | undefined): string {
  const sent = code === 'tls_peer_rejected' ? '; nothing was sent' : '';
  const retried = retriedMs === undefined ? '' : `; retried for ${(retriedMs / 1000).toFixed(1)} s while no Nexus could take the call`;
  if (attempts.length === 0) return `${SDK_ERROR_MESSAGES[code]}${sent}${retried}`;
  return `${SDK_ERROR_MESSAGES[code]}: ${attempts.map((a) => `${a.url} (${failureText(a.failure)})`).join(', ')}${sent}${retried}`;
}

/** A 503's statement about the request's effect (see {@link NexusApiError.outcome}). */
export type RequestOutcome = 'not_applied' | 'unknown';

/** The `outcome` field of a 503 body, when it is one of the known values. */
export function outcomeFromBody(status: number, v: unknown): RequestOutcome | undefined {
  return status === 503 && (v === 'not_applied' || v === 'unknown') ? v : undefined;
}

/** Where a request went: the Nexus instance URL and the route with its action. */
export interface RequestTarget {
  url: string;
  route: string;
}

/**
 * A failed call to SPIKE Nexus. When no HTTP answer arrived, `attempts` lists each Nexus URL
 * tried and why it failed (a {@link Failure} class such as `connection_refused` or
 * `tls_server_id_not_accepted`), and the message names them:
 * `failed to talk to SPIKE Nexus: https://localhost:8553 (connection refused)`.
 */
export class NexusApiError extends SpikeError {
  declare readonly code: SdkErrorCode;
  /** HTTP status, or undefined when no response arrived (connection failure). */
  readonly status: number | undefined;
  /** The `err` code of the response body, when it had one. */
  readonly wireErr: string | undefined;
  /** URLs tried without an HTTP answer, in order, each with its cause class. */
  readonly attempts: readonly FailedAttempt[];
  /** The store failure Nexus named in its `message`, if any (see the module doc). */
  readonly storeFailure: StoreFailureKind | undefined;
  /**
   * The Nexus instance (scheme://host:port and base path, as configured) that answered, or
   * the last one tried when none did; undefined when the error did not come from a request.
   */
  readonly url: string | undefined;
  /** The route and action of the request (`/v1/store/secrets?action=get`), with `url`. */
  readonly route: string | undefined;
  /**
   * What a 503 said of the request's effect: `not_applied` (certainly nothing changed: safe
   * to retry anywhere) or `unknown` (a write may have been applied); undefined otherwise.
   */
  readonly outcome: RequestOutcome | undefined;
  /**
   * Nexus's own explanation of a refused request (the `message` of its error body, e.g.
   * `request body too large`), when it sent one of at most {@link DETAIL_MAX} printable ASCII
   * characters; undefined otherwise. Nexus words these without any secret value or path.
   */
  readonly detail: string | undefined;
  /**
   * How long the call went on retrying while no Nexus could take it (see `retryUnavailableMs`:
   * refused, no address, or 503 with nothing applied) before it failed with this; undefined
   * when it did not wait. The last round's answer or attempts are the rest of this error.
   */
  readonly retriedMs: number | undefined;
  constructor(
    code: SdkErrorCode,
    opts: { status?: number; wireErr?: string; cause?: unknown; attempts?: readonly FailedAttempt[]; storeFailure?: StoreFailureKind; at?: RequestTarget; outcome?: RequestOutcome; detail?: string; retriedMs?: number } = {},
  ) {
    const attempts = opts.attempts ?? [];
    super(code, messageFor(code, attempts, opts.retriedMs), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status;
    this.wireErr = opts.wireErr;
    this.storeFailure = opts.storeFailure;
    this.attempts = attempts;
    // The last attempt without an answer names the instance when no target was given.
    this.url = opts.at?.url ?? attempts[attempts.length - 1]?.url;
    this.route = opts.at?.route;
    this.outcome = opts.outcome;
    this.detail = opts.detail;
    this.retriedMs = opts.retriedMs;
  }

  /** This error, for a call that went on retrying for `ms` before it (`retriedMs`, and the message says so). */
  afterRetries(ms: number): NexusApiError {
    const at = this.url !== undefined && this.route !== undefined ? { url: this.url, route: this.route } : undefined;
    const e = new NexusApiError(this.code, {
      attempts: this.attempts, retriedMs: Math.round(ms),
      ...(this.status !== undefined ? { status: this.status } : {}), ...(this.wireErr !== undefined ? { wireErr: this.wireErr } : {}),
      ...(this.cause !== undefined ? { cause: this.cause } : {}), ...(this.storeFailure !== undefined ? { storeFailure: this.storeFailure } : {}),
      ...(at ? { at } : {}), ...(this.outcome !== undefined ? { outcome: this.outcome } : {}), ...(this.detail !== undefined ? { detail: this.detail } : {}),
    });
    if (this.stack !== undefined) e.stack = this.stack.replace(this.message, e.message); // where it was thrown, not here
    return e;
  }

  /** Why the last attempt failed, if no answer arrived. */
  get failure(): Failure | undefined {
    return this.attempts[this.attempts.length - 1]?.failure;
  }
}

/** Stable codes of caller mistakes detected before anything is sent. */
export const SDK_USAGE_MESSAGES = {
  sdk_no_urls: 'no SPIKE Nexus URL configured',
  sdk_bad_url: 'invalid SPIKE Nexus URL (must be https://host[:port] with no path, query or credentials)',
  sdk_bad_argument: 'invalid argument',
  sdk_bad_shard: 'invalid shard (id must be an integer ≥ 1, value exactly 32 bytes, not all zero)',
  sdk_closed: 'the client has been closed',
} as const;

export type SdkUsageCode = keyof typeof SDK_USAGE_MESSAGES;

/** A caller error detected by the SDK before any request is sent. */
export class SdkUsageError extends SpikeError {
  declare readonly code: SdkUsageCode;
  constructor(code: SdkUsageCode, detail?: string) {
    // `detail` is a fixed, caller-independent phrase chosen by SDK code (never input values).
    super(code, detail ? `${SDK_USAGE_MESSAGES[code]}: ${detail}` : SDK_USAGE_MESSAGES[code]);
  }
}
