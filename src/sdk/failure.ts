/**
 * Why a request to SPIKE Nexus got no answer: one stable class per cause, for errors that
 * name the URL and the cause in one line (issue 11 part 5).
 *
 * | class | text | from |
 * |---|---|---|
 * | `connection_refused` | connection refused | `ECONNREFUSED` |
 * | `host_not_found` | host not found | `ENOTFOUND`, `EAI_AGAIN` |
 * | `host_unreachable` | host unreachable | `EHOSTUNREACH`, `ENETUNREACH`, `EADDRNOTAVAIL` |
 * | `timeout` | timeout | the call's deadline, connect / header / body timeouts (undici's and the `node:https` client's), `ETIMEDOUT` |
 * | `connection_closed` | connection closed by the server | `ECONNRESET`, `EPIPE`, undici socket errors |
 * | `tls_server_id_not_accepted` | TLS: server ID not accepted | the server's SVID is valid but its SPIFFE ID is not Nexus (`PeerRejectedError` reason `unauthorized`) |
 * | `tls_chain_not_trusted` | TLS: chain not trusted | the server's certificate does not chain to the Workload API bundle (OpenSSL verify codes, `svid_*` reasons) |
 * | `tls_handshake_failed` | TLS: handshake failed | other TLS errors (`ERR_SSL_*`, `EPROTO`) |
 * | `connection_failed` | connection failed | anything else |
 *
 * `detail` is the stable code behind the class when it adds something (`svid_untrusted_chain`,
 * `CERT_HAS_EXPIRED`, …). Nothing here copies a certificate, an ID, or any response byte.
 */
import { clockSkewHint } from '../spiffe/index.js';

export type FailureClass =
  | 'connection_refused'
  | 'host_not_found'
  | 'host_unreachable'
  | 'timeout'
  | 'connection_closed'
  | 'tls_server_id_not_accepted'
  | 'tls_chain_not_trusted'
  | 'tls_handshake_failed'
  | 'connection_failed';

const FAILURE_TEXT: Readonly<Record<FailureClass, string>> = {
  connection_refused: 'connection refused',
  host_not_found: 'host not found',
  host_unreachable: 'host unreachable',
  timeout: 'timeout',
  connection_closed: 'connection closed by the server',
  tls_server_id_not_accepted: 'TLS: server ID not accepted',
  tls_chain_not_trusted: 'TLS: chain not trusted',
  tls_handshake_failed: 'TLS: handshake failed',
  connection_failed: 'connection failed',
};

export interface Failure {
  class: FailureClass;
  /** A stable code behind the class (never free text). */
  detail?: string;
}

/** One failed attempt against one Nexus URL. */
export interface FailedAttempt {
  url: string;
  failure: Failure;
}

/**
 * `connection refused` · `TLS: chain not trusted: svid_untrusted_chain` … A server SVID refused
 * for its dates adds the clock-skew hint (ENV-03): `TLS: chain not trusted: CERT_HAS_EXPIRED
 * — server SVID expired by this host's clock; check for clock skew …`.
 */
export function failureText(f: Failure): string {
  if (f.detail === undefined) return FAILURE_TEXT[f.class];
  const hint = f.class === 'tls_chain_not_trusted' ? clockSkewHint('server', f.detail) : undefined;
  return `${FAILURE_TEXT[f.class]}: ${f.detail}${hint !== undefined ? ` — ${hint}` : ''}`;
}

/** OpenSSL certificate verification codes (Node's `err.code` on a failed verify). */
const CHAIN_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

// `ERR_*_TIMEOUT`: the `node:https` mTLS client's timeouts (MtlsTimeoutError).
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ERR_CONNECT_TIMEOUT', 'ERR_HEADERS_TIMEOUT', 'ERR_BODY_TIMEOUT']);
const CLOSED_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const CODE_RE = /^[A-Za-z0-9_]{1,64}$/;

interface Found {
  codes: string[];
  /** `reason` of a `tls_peer_rejected` error, when one is in the chain. */
  peerReason?: string;
}

function walk(e: unknown, out: Found, depth = 0): void {
  let cur: unknown = e;
  for (let i = 0; i < 8 && depth < 4 && cur !== null && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') {
      out.codes.push(c);
      const r = (cur as { reason?: unknown }).reason;
      if (c === 'tls_peer_rejected' && typeof r === 'string' && CODE_RE.test(r) && out.peerReason === undefined) out.peerReason = r;
    }
    const errs = (cur as { errors?: unknown }).errors; // AggregateError (happy eyeballs)
    if (Array.isArray(errs)) for (const x of errs) walk(x, out, depth + 1);
    cur = (cur as { cause?: unknown }).cause;
  }
}

/** True when `e` is (or wraps) a TLS verdict against the server: never retry elsewhere, nothing was sent. */
export function isTrustFailure(e: unknown): boolean {
  const f = classifyFailureCause(e);
  return f.class === 'tls_server_id_not_accepted' || f.class === 'tls_chain_not_trusted';
}

/** Classifies a request that got no HTTP answer; `signal` is the call's deadline. */
export function classifyFailureCause(e: unknown, signal?: AbortSignal): Failure {
  const found: Found = { codes: [] };
  walk(e, found);
  if (found.peerReason !== undefined) {
    return found.peerReason === 'unauthorized'
      ? { class: 'tls_server_id_not_accepted' }
      : { class: 'tls_chain_not_trusted', detail: found.peerReason };
  }
  const chain = found.codes.find((c) => CHAIN_CODES.has(c));
  if (chain !== undefined) return { class: 'tls_chain_not_trusted', detail: chain };
  if (signal?.aborted || found.codes.some((c) => TIMEOUT_CODES.has(c))) return { class: 'timeout' };
  if (found.codes.includes('ECONNREFUSED')) return { class: 'connection_refused' };
  if (found.codes.some((c) => c === 'ENOTFOUND' || c === 'EAI_AGAIN')) return { class: 'host_not_found' };
  if (found.codes.some((c) => c === 'EHOSTUNREACH' || c === 'ENETUNREACH' || c === 'EADDRNOTAVAIL')) return { class: 'host_unreachable' };
  const ssl = found.codes.find((c) => c.startsWith('ERR_SSL_') || c === 'EPROTO');
  if (ssl !== undefined) return { class: 'tls_handshake_failed', ...(CODE_RE.test(ssl) ? { detail: ssl } : {}) };
  if (found.codes.some((c) => CLOSED_CODES.has(c))) return { class: 'connection_closed' };
  return { class: 'connection_failed' };
}

/** Error codes meaning "the connection never opened" (nothing was sent). */
const PRE_SEND_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOENT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_CONNECT_TIMEOUT',
  // The `node:https` mTLS client (spiffe/tls/https-client.ts) refuses a request, or abandons its
  // dial, once closed: before sending. (undici's closed client is `UND_ERR_CLOSED`: ambiguous.)
  'ERR_CLIENT_CLOSED',
]);

/** Error codes meaning a connection broke while in use (the request may have arrived). */
const AMBIGUOUS_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ERR_HEADERS_TIMEOUT', 'ERR_BODY_TIMEOUT']);

/** `DialFailedError`'s code (spiffe/tls/dial.ts): the dial failed before any request byte. */
const DIAL_FAILED = 'ERR_MTLS_DIAL_FAILED';

/** What a failed request means for trying again: `pre_send` (nothing was sent), `ambiguous` (it may have arrived), a TLS verdict, or the caller's/deadline's abort. */
export type FailureKind = 'pre_send' | 'ambiguous' | 'peer_rejected' | 'aborted';

/**
 * Classifies a request failure for the fail-over decision. A server that fails the TLS trust
 * check (SPIFFE ID not accepted, or a chain that does not lead to the Workload API bundle) is
 * `peer_rejected`: the handshake never completed, so nothing was sent, and it is not retried.
 */
export function classifyFailure(e: unknown, signal?: AbortSignal): FailureKind {
  if (signal?.aborted) return 'aborted';
  const found: Found = { codes: [] };
  walk(e, found);
  const codes = found.codes;
  if (codes.includes('tls_peer_rejected') || isTrustFailure(e)) return 'peer_rejected';
  // The mTLS dial failed before handing the socket to HTTP (even on a reset): nothing was sent.
  if (codes.includes(DIAL_FAILED)) return 'pre_send';
  if (codes.some((c) => AMBIGUOUS_CODES.has(c))) return 'ambiguous';
  if (codes.some((c) => PRE_SEND_CODES.has(c))) return 'pre_send';
  return 'ambiguous';
}
