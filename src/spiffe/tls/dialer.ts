/**
 * The mTLS client (D14): an undici dispatcher whose `connect` builds each TLS socket from the
 * source's *current* SVID and bundles (so new connections follow rotation), then verifies the
 * server's SVID and authorizes its SPIFFE ID (peer.ts) before undici gets the socket, so a
 * wrong server never receives a request byte. There is no hostname check: the server is
 * identified by its SPIFFE ID only.
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { buildConnector, Dispatcher } from 'undici';
import type { X509Source } from '../source.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import type { Authorizer } from '../authorize.js';
import { MTLS_DEFAULTS, TLS_BASE, secureContextFor } from './context.js';
import { PeerRejectedError, checkPeer } from './peer.js';

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
 * An undici dispatcher (Agent) for mTLS to SPIFFE servers: pass it as `dispatcher` to
 * `undici.request`. A connection is handed to undici only after the server's SVID verified
 * and `authorizeServer` accepted its ID; otherwise the request fails with `PeerRejectedError`
 * and the server never receives a request byte.
 */
export function createMtlsDispatcher(opts: MtlsClientOptions): Dispatcher {
  const { source, authorizeServer } = opts;
  const { Agent, errors: undiciErrors } = undici();
  const connectTimeoutMs = opts.connectTimeoutMs ?? MTLS_DEFAULTS.clientConnectTimeoutMs;
  const keepAliveMs = opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.clientKeepAliveTimeoutMs;

  // One secure context per (SVID, bundle set) pair. Sources replace both objects on every
  // update (they are treated as immutable), so a changed object means rotation. Even a stale
  // `ca` list could not let a wrong server through: the SVID check below reads the live source.
  let cached: { svid: X509Svid; bundles: X509BundleSet; context: tls.SecureContext } | undefined;
  const currentContext = (): tls.SecureContext => {
    const svid = source.getX509Svid();
    const bundles = source.bundleSet();
    if (cached?.svid !== svid || cached.bundles !== bundles) {
      cached = { svid, bundles, context: secureContextFor(source) };
    }
    return cached.context;
  };

  const connect: buildConnector.connector = (options, callback) => {
    let settled = false;
    const finish = (err: Error | null, socket: TLSSocket | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        socket?.destroy();
        callback(err, null);
      } else if (socket) {
        callback(null, socket);
      }
    };
    let secureContext: tls.SecureContext;
    try {
      secureContext = currentContext();
    } catch (error) {
      callback(error instanceof Error ? error : new Error('no usable X.509-SVID'), null);
      return;
    }
    const host = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    const servername = net.isIP(host) === 0 ? (options.servername || host) : undefined;
    const socket = tls.connect({
      host,
      port: Number(options.port) || 443,
      ...(servername ? { servername } : {}),
      secureContext,
      minVersion: TLS_BASE.minVersion,
      rejectUnauthorized: true,
      // The server is identified by its SPIFFE ID (checked below), never by a host name.
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['http/1.1'],
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const timer = setTimeout(() => finish(new undiciErrors.ConnectTimeoutError(), socket), connectTimeoutMs);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.once('secureConnect', () => {
      const check = checkPeer(socket, source, authorizeServer);
      if (check.ok) finish(null, socket);
      else finish(new PeerRejectedError(check.reason, check.error !== undefined ? { cause: check.error } : undefined), socket);
    });
    socket.on('error', (err) => finish(err, socket));
  };

  return new Agent({
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
