/**
 * The mTLS client (D14): an undici dispatcher whose `connect` builds each TLS socket from the
 * source's *current* SVID and bundles (so new connections follow rotation), then verifies the
 * server's SVID and authorizes its SPIFFE ID (dial.ts, peer.ts) before undici gets the socket,
 * so a wrong server never receives a request byte. There is no hostname check: the server is
 * identified by its SPIFFE ID only.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { buildConnector, Dispatcher } from 'undici';
import type { X509Source } from '../source.js';
import type { Authorizer } from '../authorize.js';
import { MTLS_DEFAULTS } from './context.js';
import { contextCache, dialMtls } from './dial.js';

/**
 * undici is loaded on the first `createMtlsDispatcher()` call, not at import: servers that never
 * dial out (the Keeper) would otherwise carry its ~15 MiB of RSS for nothing. `require` returns
 * the same module instance an ESM `import 'undici'` elsewhere gets (one CommonJS cache).
 */
const requireCjs = createRequire(import.meta.url);
let undiciModule: typeof Undici | undefined;
function undici(): typeof Undici {
  undiciModule ??= requireCjs('undici') as typeof Undici;
  return undiciModule;
}

export interface MtlsClientOptions {
  /** Own SVID and trust bundles, read afresh for every new connection (rotation). */
  source: X509Source;
  /** Decides whether the server's verified ID may receive requests. */
  authorizeServer: Authorizer;
  /** Connections per origin; default 10 (SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST). */
  connections?: number;
  /** TCP connect + TLS handshake + SVID check; default 10 s. */
  connectTimeoutMs?: number;
  /** Idle pooled connections are closed after this; default 4 s (below the server's 30 s). */
  keepAliveTimeoutMs?: number;
  /** Response headers must arrive within this time; default 30 s. */
  headersTimeoutMs?: number;
  /** Gap allowed between response body chunks; default 30 s. */
  bodyTimeoutMs?: number;
}

/**
 * An undici dispatcher for mTLS to SPIFFE servers (one pool per origin: {@link poolsAgent}):
 * pass it as `dispatcher` to `undici.request`. A connection is handed to undici only after the server's SVID verified
 * and `authorizeServer` accepted its ID; otherwise the request fails with `PeerRejectedError`
 * and the server never receives a request byte.
 */
export function createMtlsDispatcher(opts: MtlsClientOptions): Dispatcher {
  const { source, authorizeServer } = opts;
  const { errors: undiciErrors } = undici();
  const connectTimeoutMs = opts.connectTimeoutMs ?? MTLS_DEFAULTS.clientConnectTimeoutMs;
  const keepAliveMs = opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.clientKeepAliveTimeoutMs;
  const context = contextCache(source);
  const connect: buildConnector.connector = (options, callback) => {
    dialMtls(
      { hostname: options.hostname, port: Number(options.port) || 443, servername: options.servername, localAddress: options.localAddress ?? undefined },
      { source, authorizeServer, context, timeoutMs: connectTimeoutMs, timeoutError: () => new undiciErrors.ConnectTimeoutError() },
      (err, socket) => (err ? callback(err, null) : callback(null, socket!)),
    );
  };

  const pools = poolsAgent(undici());
  return new pools({
    connect,
    connections: opts.connections ?? MTLS_DEFAULTS.clientConnections,
    // Both: the server's `Keep-Alive: timeout=` hint would otherwise override our idle limit.
    keepAliveTimeout: keepAliveMs,
    keepAliveMaxTimeout: keepAliveMs,
    headersTimeout: opts.headersTimeoutMs ?? MTLS_DEFAULTS.clientHeadersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs ?? MTLS_DEFAULTS.clientBodyTimeoutMs,
    connectTimeout: connectTimeoutMs,
  });
}

type PoolsAgent = new (options: Undici.Pool.Options) => Dispatcher;
let poolsAgentClass: PoolsAgent | undefined;

/**
 * A dispatcher with one undici `Pool` per origin, kept for the dispatcher's life (a client
 * talks to a few Nexus or Keeper addresses). Not undici's `Agent` (7.x): it closes an origin's
 * pool when a connection to it fails while it counts none open, and the pools it closed keep
 * counting their connections' events against the pool that replaced them, so after a server
 * restart each new pool was closed in turn and every connection it made was destroyed as soon
 * as the handshake ended (UND_ERR_DESTROYED). Measured with 20 identities × 4 connections
 * under load: ~250 full mTLS handshakes a second on both sides and half the throughput (p99
 * ~1 s) for as long as the load lasted after Nexus restarted; with this dispatcher, the rate
 * before the restart within 5 s.
 */
function poolsAgent(u: typeof Undici): PoolsAgent {
  poolsAgentClass ??= class MtlsPools extends u.Dispatcher {
    readonly #options: Undici.Pool.Options;
    readonly #pools = new Map<string, Undici.Pool>();
    #closed = false;

    constructor(options: Undici.Pool.Options) {
      super();
      this.#options = options;
    }

    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (this.#closed) throw new u.errors.ClientClosedError();
      const origin = options.origin === undefined ? '' : new URL(String(options.origin)).origin;
      if (origin === '' || origin === 'null') throw new u.errors.InvalidArgumentError('opts.origin must be a non-empty string or URL.');
      let pool = this.#pools.get(origin);
      if (pool === undefined) this.#pools.set(origin, (pool = new u.Pool(origin, this.#options)));
      return pool.dispatch(options, handler);
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      this.#closed = true;
      const done = Promise.all([...this.#pools.values()].map((p) => p.close())).then(() => undefined);
      if (callback === undefined) return done;
      void done.then(callback, callback);
    }

    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
      this.#closed = true;
      const err = typeof a === 'function' ? null : a ?? null;
      const callback = typeof a === 'function' ? a : b;
      const done = Promise.all([...this.#pools.values()].map((p) => p.destroy(err))).then(() => undefined);
      if (callback === undefined) return done;
      void done.then(callback, callback);
    }
  };
  return poolsAgentClass;
}
