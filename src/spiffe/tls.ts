/**
 * mTLS server and client factories for X.509-SVIDs (decision D14).
 *
 * OpenSSL verifies the peer's chain against the flat list of every trusted authority; that
 * alone accepts SVIDs the SPIFFE rules forbid (CA:TRUE leaves, several URI SANs, a leaf of
 * trust domain A signed by trust domain B's CA). So both sides then run `verifyX509Svid` on
 * the peer's chain against the bundle of the claimed ID's own trust domain, and an
 * `Authorizer` on the resulting SPIFFE ID, before a single HTTP byte is processed (server) or
 * sent (client).
 *
 * - Server (`createMtlsServer`): `node:https`, client certificates required, TLS 1.3 only,
 *   session tickets off and no session cache, so every connection runs a full handshake
 *   against the current bundle. The verified SPIFFE ID is cached per TLS socket, so a request
 *   costs one `WeakMap` lookup; handlers receive the typed ID, never a certificate.
 * - Client (`createMtlsDispatcher`): an undici `Agent` whose `connect` builds each TLS socket
 *   from the source's *current* SVID and bundles, verifies the server's SVID and runs the
 *   predicate before handing the socket to undici. There is no hostname check: the server is
 *   identified by its SPIFFE ID only.
 * - Rotation: the server rebuilds its secure context on the source's `'update'`; the client
 *   reads the source on every new connection. Established connections are left alone.
 */
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type DetailedPeerCertificate, type PeerCertificate, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { constants as cryptoConstants } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { buildConnector, Dispatcher } from 'undici';
import { SpikeError } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { SpiffeId } from './id.js';
import type { X509Source } from './source.js';
import type { X509Svid } from './svid.js';
import type { X509BundleSet } from './bundle.js';
import { authorizeAny, type Authorizer } from './authorize.js';
import { verifyX509Svid } from './verify.js';

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

/** What a request handler learns about its caller. */
export interface PeerIdentity {
  readonly id: SpiffeId;
}

/** A request handler; `peer` is the caller's verified and authorized SPIFFE ID. */
export type MtlsHandler = (req: IncomingMessage, res: ServerResponse, peer: SpiffeId) => void | Promise<void>;

export interface MtlsServerOptions {
  /** Own SVID and trust bundles; the server follows its `'update'` events (rotation). */
  source: X509Source;
  /** Handshake-level filter on the client's verified ID; default `authorizeAny()`. */
  authorizeClient?: Authorizer;
  handler: MtlsHandler;
  /** Address to bind; default: all interfaces (like SPIKE's `:8553`). */
  host?: string;
  /** TCP port; 0 picks an ephemeral port (read it from `server.port` after `listen()`). */
  port: number;
  /** Open TCP connections beyond this are dropped at accept; default 1024. */
  maxConnections?: number;
  /** A TLS handshake not finished in this time is aborted; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Request headers must arrive within this time; default 10 s (SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT). */
  headersTimeoutMs?: number;
  /** A whole request must arrive within this time; default 60 s. */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this; default 30 s. */
  keepAliveTimeoutMs?: number;
  logger?: Logger;
}

export interface MtlsServer {
  /** The bound port after `listen()` resolved (the requested one before). */
  readonly port: number;
  listen(): Promise<void>;
  /** Stops accepting, closes idle connections, gives in-flight requests a short grace, then closes the rest. */
  close(): Promise<void>;
  /** Open TCP connections, handshaking ones included. */
  connections(): number;
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
 * The other side's SVID failed verification or the authorizer refused its ID. `reason` is a
 * stable code (the verification error's code, or `'unauthorized'`); nothing in the error
 * echoes the certificate or the ID.
 */
export class PeerRejectedError extends SpikeError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('tls_peer_rejected', 'the TLS peer was rejected: its SVID is invalid or its SPIFFE ID is not authorized', options);
    this.reason = reason;
  }
}

/** Every default in one place. */
export const MTLS_DEFAULTS = Object.freeze({
  maxConnections: 1024,
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  closeGraceMs: 2_000,
  clientConnections: 10,
  clientConnectTimeoutMs: 10_000,
  clientKeepAliveTimeoutMs: 4_000,
  clientHeadersTimeoutMs: 30_000,
  clientBodyTimeoutMs: 30_000,
  /** Longest peer chain we walk (leaf + intermediates + anchor). */
  maxChainLength: 16,
});

/**
 * TLS settings shared by both sides. TLS 1.3 only (catalogue TLS-20/24: no 1.2 hello, so no
 * renegotiation); security level 2 refuses RSA < 2048, curves < 224 bits and SHA-1 signatures.
 * `SSL_OP_NO_TICKET` and the absence of `newSession`/`resumeSession` handlers mean no session
 * is ever resumed (TLS-18/19): resumption would skip the peer check against the current bundle.
 */
const TLS_BASE = Object.freeze({
  minVersion: 'TLSv1.3',
  ciphers: `${tls.DEFAULT_CIPHERS}:@SECLEVEL=2`,
  secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
} satisfies SecureContextOptions);

// ---------------------------------------------------------------------------------------------
// Peer verification (shared)

type PeerCheck = { ok: true; id: SpiffeId } | { ok: false; reason: string; error?: unknown; id?: SpiffeId };

/**
 * The peer's certificate chain as DER, leaf first, following Node's issuer links. Node orders
 * the presented certificates by issuer and completes the path from the local trust store, so
 * the chain may end in the trust anchor; a self-issued anchor after the leaf is dropped (it
 * comes from our own store; the bundle supplies anchors to the verifier).
 */
export function peerChainDer(socket: TLSSocket): Uint8Array[] {
  // With no peer certificate Node returns an empty object (typed as a certificate).
  const leaf: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return [];
  const chain: Uint8Array[] = [leaf.raw];
  const seen = new Set<DetailedPeerCertificate>([leaf]);
  let cur: DetailedPeerCertificate = leaf;
  while (chain.length < MTLS_DEFAULTS.maxChainLength) {
    const next: DetailedPeerCertificate | undefined = cur.issuerCertificate;
    if (!next || !next.raw || seen.has(next)) break;
    const selfIssued = next.issuerCertificate === next;
    if (selfIssued) break;
    chain.push(next.raw);
    seen.add(next);
    cur = next;
  }
  return chain;
}

function verifyChain(chain: readonly Uint8Array[], source: X509Source): { id: SpiffeId } | { reason: string; error: unknown } {
  try {
    return { id: verifyX509Svid(chain, source) };
  } catch (error) {
    return { reason: error instanceof SpikeError ? error.code : 'svid_invalid', error };
  }
}

function checkPeer(socket: TLSSocket, source: X509Source, authorize: Authorizer): PeerCheck {
  // Fast path: most SVIDs are signed directly by a bundle authority, and the leaf alone is
  // cheap to get. `getPeerCertificate(true)` costs more than the rest of a handshake's JS
  // work together, so the full chain is fetched only when the leaf alone does not verify.
  // A path found from fewer certificates is just as valid: identity and rules come from the
  // leaf, and the path must still end in the bundle of the leaf's trust domain.
  // (Not `getPeerX509Certificate()`: on Node 20, calling it first makes a later
  // `getPeerCertificate(true)` return the leaf alone, losing the intermediates.)
  const leaf = socket.getPeerCertificate(false) as PeerCertificate | undefined;
  if (!leaf || !leaf.raw) return { ok: false, reason: 'no_peer_certificate' };
  let result = verifyChain([leaf.raw], source);
  if (!('id' in result)) {
    const chain = peerChainDer(socket);
    if (chain.length > 1) result = verifyChain(chain, source);
  }
  if (!('id' in result)) return { ok: false, reason: result.reason, error: result.error };
  const id = result.id;
  // A workload leaf names a workload, never a bare trust domain (catalogue TLS-14).
  if (id.path === '') return { ok: false, reason: 'svid_bad_spiffe_id' };
  let allowed = false;
  try {
    allowed = authorize(id) === true;
  } catch (error) {
    return { ok: false, reason: 'authorizer_failed', error };
  }
  return allowed ? { ok: true, id } : { ok: false, reason: 'unauthorized', id };
}

// ---------------------------------------------------------------------------------------------
// Secure contexts from a source

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/**
 * PEM-armours a PKCS#8 DER private key into a Buffer without ever making a JS string of the
 * key (Node's TLS accepts keys only as PEM, and `KeyObject.export({format:'pem'})` returns a
 * string). The caller zeroes the result.
 */
function pkcs8PemBuffer(der: Uint8Array): Buffer {
  const head = Buffer.from('-----BEGIN PRIVATE KEY-----\n');
  const tail = Buffer.from('-----END PRIVATE KEY-----\n');
  const b64Len = Math.ceil(der.length / 3) * 4;
  const lines = Math.ceil(b64Len / 64);
  const out = Buffer.alloc(head.length + b64Len + lines + tail.length);
  let o = head.copy(out, 0);
  let col = 0;
  const put = (byte: number): void => {
    out[o++] = byte;
    if (++col === 64) { out[o++] = 0x0a; col = 0; }
  };
  for (let i = 0; i < der.length; i += 3) {
    const b0 = der[i] ?? 0;
    const b1 = der[i + 1] ?? 0;
    const b2 = der[i + 2] ?? 0;
    put(BASE64[b0 >> 2] ?? 0);
    put(BASE64[((b0 & 3) << 4) | (b1 >> 4)] ?? 0);
    put(i + 1 < der.length ? BASE64[((b1 & 15) << 2) | (b2 >> 6)] ?? 0 : 0x3d);
    put(i + 2 < der.length ? BASE64[b2 & 63] ?? 0 : 0x3d);
  }
  if (col !== 0) out[o++] = 0x0a;
  o += tail.copy(out, o);
  return out.subarray(0, o);
}

/**
 * Secure-context options for the source's current SVID and bundles. The key PEM buffer is
 * returned separately so the caller can zero it once OpenSSL has copied it.
 */
function contextOptions(source: X509Source): { options: SecureContextOptions; keyPem: Buffer } {
  const svid = source.getX509Svid();
  const cert = svid.certificates.map((c) => c.toString()).join('\n');
  const ca = source.bundleSet().allAuthorities().map((c) => c.toString());
  const der = svid.privateKey.export({ format: 'der', type: 'pkcs8' });
  let keyPem: Buffer;
  try {
    keyPem = pkcs8PemBuffer(der);
  } finally {
    der.fill(0);
  }
  // `ca: []` (no bundles yet) trusts nothing: Node adds the system roots only when `ca` is absent.
  return { options: { ...TLS_BASE, cert, key: keyPem, ca }, keyPem };
}

function secureContextFor(source: X509Source): tls.SecureContext {
  const { options, keyPem } = contextOptions(source);
  try {
    return tls.createSecureContext(options);
  } finally {
    keyPem.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Server

/** Creates (but does not start) an mTLS HTTP/1.1 server; see the module comment. */
export function createMtlsServer(opts: MtlsServerOptions): MtlsServer {
  const o = {
    authorizeClient: opts.authorizeClient ?? authorizeAny(),
    maxConnections: opts.maxConnections ?? MTLS_DEFAULTS.maxConnections,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? MTLS_DEFAULTS.handshakeTimeoutMs,
    headersTimeoutMs: opts.headersTimeoutMs ?? MTLS_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs ?? MTLS_DEFAULTS.requestTimeoutMs,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.keepAliveTimeoutMs,
    logger: opts.logger ?? createLogger({ component: 'spiffe-tls' }),
  };
  for (const [name, v] of Object.entries({
    port: opts.port, maxConnections: o.maxConnections, handshakeTimeoutMs: o.handshakeTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, keepAliveTimeoutMs: o.keepAliveTimeoutMs,
  })) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`mTLS server option ${name} must be a non-negative integer`);
  }
  // Node refuses headersTimeout > requestTimeout; keep the request bound the stronger one.
  const headersTimeout = o.requestTimeoutMs > 0 ? Math.min(o.headersTimeoutMs, o.requestTimeoutMs) : o.headersTimeoutMs;
  const { source, handler } = opts;
  const log = o.logger;
  const peers = new WeakMap<TLSSocket, SpiffeId>();
  const sockets = new Set<Socket>();
  const inflight = new Set<ServerResponse>();
  let closed = false;

  const initial = contextOptions(source);
  let server: https.Server;
  try {
    server = https.createServer({
      ...initial.options,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: o.handshakeTimeoutMs,
      headersTimeout,
      requestTimeout: o.requestTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // Header/request timeouts are enforced by a periodic sweep (default every 30 s).
      connectionsCheckingInterval: Math.max(250, Math.min(1_000, Math.floor(headersTimeout / 4) || 1_000)),
      noDelay: true,
    });
  } finally {
    initial.keyPem.fill(0);
  }
  server.maxConnections = o.maxConnections;

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('drop', () => log.warn({ event: 'tls_connection_dropped', maxConnections: o.maxConnections }, 'connection limit reached'));

  // Runs before the HTTP layer's own listener: a rejected socket is destroyed synchronously,
  // before its first read, so no HTTP byte of it is ever parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const check = checkPeer(socket, source, o.authorizeClient);
    if (check.ok) {
      peers.set(socket, check.id);
      return;
    }
    if (check.reason === 'unauthorized') {
      log.warn({ event: 'tls_peer_rejected', reason: check.reason, peer: check.id?.toString(), remote: socket.remoteAddress }, 'client not authorized');
    } else {
      log.warn({ event: 'tls_peer_rejected', reason: check.reason, remote: socket.remoteAddress }, 'client SVID rejected');
    }
    socket.destroy();
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const verified = peers.has(socket as TLSSocket);
    log.debug({ event: verified ? 'http_client_error' : 'tls_client_error', code: err.code ?? 'unknown', remote: socket.remoteAddress }, 'client error');
    if (verified && socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const text = status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroySoon();
      return;
    }
    socket.destroy();
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const peer = peers.get(req.socket as TLSSocket);
    if (!peer) {
      // Unreachable: unverified sockets are destroyed before HTTP sees them.
      req.socket.destroy();
      return;
    }
    // Shutdown: answer in-flight requests, then close their connections instead of keeping them alive.
    inflight.add(res);
    if (closed) res.setHeader('connection', 'close');
    res.once('close', () => {
      inflight.delete(res);
      if (closed) setImmediate(() => server.closeIdleConnections());
    });
    const fail = (error: unknown): void => {
      log.error({ event: 'mtls_handler_failed', code: error instanceof SpikeError ? error.code : 'internal' }, 'request handler threw');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
        res.end('{"err":"internal_error"}');
      } else {
        res.destroy();
      }
    };
    try {
      const r = handler(req, res, peer);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
    } catch (error) {
      fail(error);
    }
  });

  const onUpdate = (): void => {
    let next: ReturnType<typeof contextOptions> | undefined;
    try {
      next = contextOptions(source);
      server.setSecureContext(next.options);
      log.info({ event: 'tls_context_rotated' }, 'new SVID/bundles apply to new connections');
    } catch (error) {
      log.error({ event: 'tls_context_rotation_failed', code: error instanceof SpikeError ? error.code : 'invalid_svid_or_bundle' }, 'kept the previous TLS context');
    } finally {
      next?.keyPem.fill(0);
    }
  };

  // Subscribed from creation on, so no rotation between createMtlsServer() and listen() is missed.
  source.on('update', onUpdate);

  let listening = false;
  return {
    get port(): number {
      const addr = server.address();
      return addr && typeof addr === 'object' ? (addr as AddressInfo).port : opts.port;
    },
    listen(): Promise<void> {
      if (closed) return Promise.reject(new Error('mTLS server is closed'));
      if (listening) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        const done = (): void => {
          server.off('error', onError);
          server.on('error', (err: NodeJS.ErrnoException) => log.error({ event: 'mtls_server_error', code: err.code ?? 'unknown' }, 'server error'));
          listening = true;
          resolve();
        };
        if (opts.host === undefined) server.listen(opts.port, done);
        else server.listen(opts.port, opts.host, done);
      });
    },
    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      source.off('update', onUpdate);
      if (!listening) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const grace = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, MTLS_DEFAULTS.closeGraceMs);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        server.closeIdleConnections();
        for (const res of inflight) if (!res.headersSent) res.setHeader('connection', 'close');
      });
    },
    connections(): number {
      return sockets.size;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Client

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
