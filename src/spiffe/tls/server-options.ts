/**
 * The mTLS server's options (server.ts): the types of its public surface, and their defaults
 * and checks.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger, type Logger } from '../../lib/index.js';
import type { SpiffeId } from '../id.js';
import type { X509Source } from '../source.js';
import { authorizeAny, type Authorizer } from '../authorize.js';
import { MTLS_DEFAULTS } from './context.js';

/** What a request handler learns about its caller. */
export interface PeerIdentity {
  readonly id: SpiffeId;
}

/**
 * A request handler. `peer` is the caller's verified and authorized SPIFFE ID, or `null` when
 * the connection's grant lapsed since its handshake (expired SVID, withdrawn authority): the
 * handler must answer its usual 401 without reading the body; the server closes the
 * connection after that answer.
 */
export type MtlsHandler = (req: IncomingMessage, res: ServerResponse, peer: SpiffeId | null) => void | Promise<void>;

/** Connection limits and timeouts (all optional; defaults in `MTLS_DEFAULTS`). */
export interface MtlsServerLimits {
  /** Verified connections at once; default 1024. */
  maxConnections?: number;
  /** Sockets still in the TLS handshake at once; default 1024 (admission.ts). */
  maxHandshakes?: number;
  /** Handshaking sockets from one remote address at once; default 32. */
  maxHandshakesPerSource?: number;
  /** A TLS handshake not finished in this time after it started is aborted, a silent socket this long after accept; default 5 s (handshake-gate.ts). */
  handshakeTimeoutMs?: number;
  /** Handshakes running at once, the rest waiting their turn; default 0 = no pacing (handshake-gate.ts). */
  handshakeSlots?: number;
  /** Longest a running handshake holds its slot; default 5 ms (handshake-gate.ts). */
  handshakeLeaseMs?: number;
  /** Longest a socket waits for a slot; default 500 ms (handshake-gate.ts). */
  handshakeWaitMs?: number;
  /** Request headers must arrive within this time; default 10 s (SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT). */
  headersTimeoutMs?: number;
  /** A whole request must arrive within this time; default 60 s. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this; default 30 s. */
  keepAliveTimeoutMs?: number;
  /** A connection is closed after its next answer once it is this old; default 10 min; 0 = no limit. */
  maxConnectionAgeMs?: number;
  /** A socket with no byte read or written for this long is closed; default 30 s; 0 = off. */
  inactivityTimeoutMs?: number;
  /** How often idle connections are re-checked (expiry, withdrawn anchors); default 1 s; 0 = only on bundle updates. */
  sweepIntervalMs?: number;
}

/**
 * Metrics hook (src/ops implements it; nothing here imports a metrics library). Reasons are
 * fixed codes: admission events, `dropped`, SVID check codes, `tls_error`. Must not throw.
 */
export interface MtlsObserver {
  /** A connection was refused or evicted by the budgets. */
  refused(reason: string): void;
  /** A TLS handshake or the SVID check after it failed. */
  handshakeFailed(reason: string): void;
}

export interface MtlsServerOptions extends MtlsServerLimits {
  /** Own SVID and trust bundles; the server follows its `'update'` events (rotation). */
  source: X509Source;
  /** Handshake-level filter on the client's verified ID; default `authorizeAny()`. */
  authorizeClient?: Authorizer;
  handler: MtlsHandler;
  /** Address to bind; default: all interfaces (like SPIKE's `:8553`). */
  host?: string;
  /** TCP port; 0 picks an ephemeral port (read it from `server.port` after `listen()`). */
  port: number;
  logger?: Logger;
  /** Period of the rate-limited warnings outsiders can trigger; default 10 s; 0 logs each one (tests). */
  warnIntervalMs?: number;
  observer?: MtlsObserver;
  /** The body of the 400 for a request Node's HTTP parser refuses (JSON; default: none). */
  malformedRequestBody?: string;
  /** The body of the last-resort 500 when the handler itself fails (JSON; default `{"err":"internal_error"}`). */
  internalErrorBody?: string;
}

export interface MtlsServer {
  /** The bound port after `listen()` resolved (the requested one before). */
  readonly port: number;
  listen(): Promise<void>;
  /** Stops accepting, closes idle connections, gives in-flight requests a short grace, then closes the rest. */
  close(): Promise<void>;
  /** Open TCP connections, handshaking ones included. */
  connections(): number;
  /** Sockets still in the TLS handshake. */
  handshaking(): number;
  /** Verified connections. */
  verified(): number;
}

/** The limits and hooks with every default filled in ({@link resolveServerOptions}). */
export interface ResolvedServerOptions extends Required<MtlsServerLimits> {
  readonly authorizeClient: Authorizer;
  readonly warnIntervalMs: number;
  readonly logger: Logger;
  /** The headers bound given to Node (see {@link resolveServerOptions}). */
  readonly headersTimeout: number;
  /** How often Node checks the headers and request bounds (its `connectionsCheckingInterval`). */
  readonly timeoutCheckMs: number;
}

/**
 * Fills in the defaults (`MTLS_DEFAULTS`) and checks every limit (a RangeError for a negative
 * or non-integer one). `headersTimeout` is the headers bound Node gets: never above the
 * request bound (Node refuses that), so the request bound stays the stronger one;
 * `timeoutCheckMs` how often Node checks them.
 */
export function resolveServerOptions(opts: MtlsServerOptions): ResolvedServerOptions {
  const o = {
    authorizeClient: opts.authorizeClient ?? authorizeAny(),
    maxConnections: opts.maxConnections ?? MTLS_DEFAULTS.maxConnections,
    maxHandshakes: opts.maxHandshakes ?? MTLS_DEFAULTS.maxHandshakes,
    maxHandshakesPerSource: opts.maxHandshakesPerSource ?? MTLS_DEFAULTS.maxHandshakesPerSource,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? MTLS_DEFAULTS.handshakeTimeoutMs,
    handshakeSlots: opts.handshakeSlots ?? MTLS_DEFAULTS.handshakeSlots,
    handshakeLeaseMs: opts.handshakeLeaseMs ?? MTLS_DEFAULTS.handshakeLeaseMs,
    handshakeWaitMs: opts.handshakeWaitMs ?? MTLS_DEFAULTS.handshakeWaitMs,
    headersTimeoutMs: opts.headersTimeoutMs ?? MTLS_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs ?? MTLS_DEFAULTS.requestTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.keepAliveTimeoutMs,
    maxConnectionAgeMs: opts.maxConnectionAgeMs ?? MTLS_DEFAULTS.maxConnectionAgeMs,
    inactivityTimeoutMs: opts.inactivityTimeoutMs ?? MTLS_DEFAULTS.inactivityTimeoutMs,
    sweepIntervalMs: opts.sweepIntervalMs ?? MTLS_DEFAULTS.sweepIntervalMs,
    warnIntervalMs: opts.warnIntervalMs ?? 10_000,
    logger: opts.logger ?? createLogger({ component: 'spiffe-tls' }),
  };
  for (const [name, v] of Object.entries({
    port: opts.port, maxConnections: o.maxConnections, maxHandshakes: o.maxHandshakes,
    maxHandshakesPerSource: o.maxHandshakesPerSource, handshakeTimeoutMs: o.handshakeTimeoutMs,
    handshakeSlots: o.handshakeSlots, handshakeLeaseMs: o.handshakeLeaseMs, handshakeWaitMs: o.handshakeWaitMs,
    headersTimeoutMs: o.headersTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, keepAliveTimeoutMs: o.keepAliveTimeoutMs,
    maxConnectionAgeMs: o.maxConnectionAgeMs, inactivityTimeoutMs: o.inactivityTimeoutMs, sweepIntervalMs: o.sweepIntervalMs, warnIntervalMs: o.warnIntervalMs,
  })) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`mTLS server option ${name} must be a non-negative integer`);
  }
  const headersTimeout = o.requestTimeoutMs > 0 ? Math.min(o.headersTimeoutMs, o.requestTimeoutMs) : o.headersTimeoutMs;
  // Node enforces both bounds from a periodic check (every 30 s by its default): once a second
  // here, a quarter of the bound for short ones (at least 250 ms), so a 10 s headers bound
  // closes its connection by 11 s. A 250 ms check was tried: under the FI-10 load it put 36-50
  // answers over 200 ms into the load's first seconds in 5 of 7 runs (0-5 in 8 runs at 1 s).
  const timeoutCheckMs = Math.max(250, Math.min(1_000, Math.floor(headersTimeout / 4) || 1_000));
  return { ...o, headersTimeout, timeoutCheckMs };
}
