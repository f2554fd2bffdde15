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
import { createPoolsDispatcher } from './pools-dispatcher.js';

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
 * An undici dispatcher for mTLS to SPIFFE servers (one pool per origin: pools-dispatcher.ts):
 * pass it as `dispatcher` to `undici.request`. A connection is handed to undici only after the
 * server's SVID verified and `authorizeServer` accepted its ID; otherwise the request fails
 * with `PeerRejectedError` and the server never receives a request byte.
 */
export function createMtlsDispatcher(opts: MtlsClientOptions): Dispatcher {
  const { source, authorizeServer } = opts;
  const u = undici();
  const connectTimeoutMs = opts.connectTimeoutMs ?? MTLS_DEFAULTS.clientConnectTimeoutMs;
  const keepAliveMs = opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.clientKeepAliveTimeoutMs;
  const context = contextCache(source);
  const connect: buildConnector.connector = (options, callback) => {
    dialMtls(
      { hostname: options.hostname, port: Number(options.port) || 443, servername: options.servername, localAddress: options.localAddress ?? undefined },
      { source, authorizeServer, context, timeoutMs: connectTimeoutMs, timeoutError: () => new u.errors.ConnectTimeoutError() },
      (err, socket) => (err ? callback(err, null) : callback(null, socket!)),
    );
  };

  return createPoolsDispatcher(u, {
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
