/**
 * The mTLS HTTP/1.1 server for X.509-SVIDs (decision D14): `node:https`, client certificates
 * required, TLS 1.3 only, session tickets off and no session cache, so every connection runs
 * a full handshake against the current bundle. After OpenSSL's chain check the peer's SVID is
 * verified against the bundle of its own trust domain and authorised, before a single HTTP
 * byte is processed; handlers receive the typed SPIFFE ID, never a certificate.
 *
 * Trust is not frozen at the handshake. Each connection keeps its grant (peer-grant.ts) and
 * every request re-checks it: a leaf or chain past its validity window, or an authority no
 * longer in the current bundle of the peer's trust domain, gets the route's usual 401 and the
 * connection is closed; a connection older than `maxConnectionAgeMs` gets `Connection: close`
 * on its next answer, so every client re-handshakes regularly. A sweep (every second, and at
 * once on a bundle update) closes idle connections whose grant lapsed.
 *
 * Resource bounds against clients without an identity: handshaking sockets have their own
 * budget, in all and per source network, with oldest-first eviction (admission.ts); optionally
 * only a few handshakes run at once, the rest waiting their turn with their TLS not yet started,
 * so a burst of handshakes stalls established connections less (handshake-gate.ts); a socket
 * with no byte read or written for `inactivityTimeoutMs` is closed (clients that stop reading
 * a reply); warnings outsiders can trigger go through a rate-limited log (src/lib/throttle.ts).
 *
 * Pipelined requests on one connection run one at a time, in order (request-queue.ts).
 *
 * Closing stops listening at once and answers every request in flight with `Connection: close`.
 * Idle keep-alive connections are kept for `closeDrainMs` first: HTTP/1.1 cannot tell a client
 * to stop sending, so a request already on its way (in the socket buffer, or written the moment
 * before) would otherwise meet a closed socket, an unknown outcome for a write. Each connection
 * closes after its next answer; what is still idle after the drain is closed then, and anything
 * left after `closeGraceMs` is destroyed.
 */
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { certTimeRefusal } from './clock-hint.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpikeError, createLogThrottle } from '../../lib/index.js';
import { ADMISSION_EVENT_MESSAGES, ConnectionAdmission } from './admission.js';
import { HandshakeGate } from './handshake-gate.js';
import { answerRefusals } from './http-refusals.js';
import { checkGrant, grantFromPath, type PeerGrant } from './peer-grant.js';
import { MTLS_DEFAULTS, contextOptions } from './context.js';
import { checkPeer } from './peer.js';
import { ConnectionRequests, HEAD_LIMITS } from './request-queue.js';
import { type MtlsServer, type MtlsServerOptions, resolveServerOptions } from './server-options.js';

export type { MtlsHandler, MtlsObserver, MtlsServer, MtlsServerLimits, MtlsServerOptions, PeerIdentity } from './server-options.js';

/** Per verified connection. */
interface ConnState {
  readonly raw: Socket;
  readonly grant: PeerGrant;
  /** Requests being answered (at most one: pipelined ones wait in `requests`). */
  busy: number;
  readonly requests: ConnectionRequests;
  /** The grant lapsed: close as soon as the current answer is out. */
  revoked: boolean;
}

function remoteKey(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string | undefined {
  return s.remoteAddress === undefined || s.remotePort === undefined ? undefined : `${s.remoteAddress}|${s.remotePort}`;
}

/**
 * The TCP socket a server-side TLS socket wraps. Node keeps it as `_parent` (not public API,
 * but stable for a long time); the address-and-port map filled at accept is the fallback.
 */
function rawOf(socket: TLSSocket, byRemote: Map<string, Socket>): Socket | undefined {
  const parent = (socket as TLSSocket & { _parent?: unknown })._parent;
  if (isSocket(parent)) return parent;
  const key = remoteKey(socket);
  return key === undefined ? undefined : byRemote.get(key);
}

function isSocket(x: unknown): x is Socket {
  return x !== null && typeof x === 'object' && typeof (x as Socket).destroy === 'function' && typeof (x as Socket).once === 'function';
}

/**
 * Stops Node's per-server timer that enforces the headers and request timeouts, as
 * `https.Server#close` does (kept running through the drain, so those timeouts still apply;
 * left running, it would keep a closed server in memory).
 */
function stopConnectionChecks(server: https.Server): void {
  const key = Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connectionsCheckingInterval');
  const timer: unknown = key === undefined ? undefined : (server as unknown as Record<symbol, unknown>)[key];
  if (timer !== undefined) clearInterval(timer as NodeJS.Timeout);
}

/** Creates (but does not start) an mTLS HTTP/1.1 server; see the module comment. */
export function createMtlsServer(opts: MtlsServerOptions): MtlsServer {
  const o = resolveServerOptions(opts);
  const headersTimeout = o.headersTimeout;
  const { source, handler } = opts;
  const log = o.logger;
  const warn = createLogThrottle(log, { intervalMs: o.warnIntervalMs });
  const admission = new ConnectionAdmission(
    { maxConnections: Math.max(1, o.maxConnections), maxHandshakes: Math.max(1, o.maxHandshakes), maxHandshakesPerSource: Math.max(1, o.maxHandshakesPerSource) },
    (event) => {
      opts.observer?.refused(event);
      warn.warn(`tls_${event}`, { limits: admission.limits }, ADMISSION_EVENT_MESSAGES[event]);
    },
    { handshakeTimeoutMs: o.handshakeTimeoutMs },
  );
  const conns = new Map<TLSSocket, ConnState>();
  /** Raw sockets by remote address and port (fallback to pair them with their TLS socket). */
  const rawByRemote = new Map<string, Socket>();
  const sockets = new Set<Socket>();
  const inflight = new Set<ServerResponse>();
  let closed = false;
  /** Closing, within `closeDrainMs`: idle connections are kept for requests on their way. */
  let draining = false;

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
      connectionsCheckingInterval: o.timeoutCheckMs,
      noDelay: true,
      maxHeaderSize: HEAD_LIMITS.maxHeaderBytes,
    });
  } finally {
    initial.keyPem.fill(0);
  }
  // Backstop only: the budgets below are what normally applies. Twice the handshake budget, so
  // that full budgets (verified table full, handshakes full of a flood) never make Node drop a
  // newcomer at accept: it must reach admission, which makes room by closing the flood's oldest.
  server.maxConnections = o.maxConnections + 2 * o.maxHandshakes;
  server.maxHeadersCount = HEAD_LIMITS.maxHeaderFields;
  // No 'timeout' listener: Node destroys a socket idle for this long, mid-request included.
  if (o.inactivityTimeoutMs > 0) server.setTimeout(o.inactivityTimeoutMs);

  // The TLS layer's own connection handler runs when the gate gives the socket a slot.
  const [start, ...extra] = server.listeners('connection');
  if (extra.length > 0 || typeof start !== 'function') throw new Error('mTLS server: unexpected connection listeners on node:https');
  server.removeListener('connection', start as (...args: unknown[]) => void);
  const gate = new HandshakeGate((raw) => { start.call(server, raw); }, {
    slots: o.handshakeSlots, leaseMs: o.handshakeLeaseMs, waitMs: o.handshakeWaitMs, timeoutMs: o.handshakeTimeoutMs,
    onTimeout: () => opts.observer?.handshakeFailed('timeout'),
    // Waiting sockets (evicted last) stay a small part of the budget (handshake-gate.ts).
    maxQueued: Math.max(1, Math.floor(o.maxHandshakes / 4)),
    maxQueuedPerSource: Math.max(1, Math.floor(o.maxHandshakes / 16)),
    onQueued: (raw) => admission.queued(raw),
    onStarted: (raw) => admission.started(raw),
  });

  server.on('connection', (raw: Socket) => {
    sockets.add(raw);
    const key = remoteKey(raw);
    if (key !== undefined) rawByRemote.set(key, raw);
    raw.once('close', () => {
      sockets.delete(raw);
      if (key !== undefined && rawByRemote.get(key) === raw) rawByRemote.delete(key);
    });
    admission.accepted(raw);
    gate.admit(raw);
  });
  server.on('drop', () => opts.observer?.refused('dropped'));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket | undefined) => {
    opts.observer?.handshakeFailed(err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'timeout' : 'tls_error');
    const skew = certTimeRefusal(socket); // ENV-03
    if (skew) warn.warn(`tls_peer_cert_time:${skew.reason}`, { event: 'tls_peer_rejected', reason: skew.reason, remote: socket?.remoteAddress }, skew.message);
  });
  server.on('drop', () => warn.warn('tls_connection_dropped', { limit: server.maxConnections }, 'connection limit reached; connection dropped at accept'));

  // Runs before the HTTP layer's own listener: a rejected socket is destroyed synchronously,
  // before its first read, so no HTTP byte of it is ever parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const raw = rawOf(socket, rawByRemote);
    const check = checkPeer(socket, source, o.authorizeClient);
    if (raw !== undefined) gate.settled(raw);
    if (!check.ok) {
      if (raw !== undefined) admission.done(raw);
      opts.observer?.handshakeFailed(check.reason);
      if (check.reason === 'unauthorized') {
        warn.warn('tls_peer_rejected:unauthorized', { event: 'tls_peer_rejected', reason: check.reason, peer: check.id?.toString(), remote: socket.remoteAddress }, 'client not authorized');
      } else {
        warn.warn(`tls_peer_rejected:${check.reason}`, { event: 'tls_peer_rejected', reason: check.reason, remote: socket.remoteAddress }, 'client SVID rejected');
      }
      socket.destroy();
      return;
    }
    if (raw === undefined) {
      // Cannot happen with Node's TLS server; never let a connection escape the budgets.
      warn.warn('tls_socket_unpaired', {}, 'verified TLS socket without its TCP socket; closed');
      socket.destroy();
      return;
    }
    if (!admission.verified(raw)) {
      socket.destroy();
      return;
    }
    conns.set(socket, { raw, grant: grantFromPath(check.id, check.path, Date.now()), busy: 0, revoked: false, requests: new ConnectionRequests(socket, () => {
      warn.warn('http_pipeline_overflow', { event: 'http_pipeline_overflow', peer: check.id.toString(), remote: socket.remoteAddress }, 'connection closed: too many pipelined requests waiting');
    }) });
    socket.once('close', () => conns.delete(socket));
  });

  answerRefusals(server, (socket) => conns.has(socket as TLSSocket), opts, log);

  /** Re-checks a connection's grant; marks it revoked when it lapsed. */
  const recheck = (st: ConnState, now: number): 'ok' | 'revoked' | 'aged' => {
    const verdict = checkGrant(st.grant, source, now, o.maxConnectionAgeMs);
    if (verdict === 'ok') return 'ok';
    if (verdict === 'max_age') return 'aged';
    if (!st.revoked) {
      st.revoked = true;
      warn.warn(`tls_peer_lapsed:${verdict}`, { event: 'tls_peer_lapsed', reason: verdict, peer: st.grant.id.toString() }, 'connection closed: the peer\'s SVID grant no longer holds');
    }
    return 'revoked';
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TLSSocket;
    const st = conns.get(socket);
    // Unreachable: unverified sockets are destroyed before HTTP sees them.
    if (st === undefined) socket.destroy();
    else st.requests.submit(() => answer(socket, st, req, res));
  });

  /** Handles one request; its grant is re-checked now, when it runs. */
  const answer = (socket: TLSSocket, st: ConnState, req: IncomingMessage, res: ServerResponse): void => {
    const state = recheck(st, Date.now());
    st.busy++;
    admission.requestStarted(st.raw);
    // Shutdown: answer in-flight requests, then close their connections instead of keeping them alive.
    inflight.add(res);
    if (closed || state !== 'ok') res.setHeader('connection', 'close');
    res.once('close', () => {
      inflight.delete(res);
      st.busy--;
      admission.requestEnded(st.raw);
      if (st.revoked && st.busy === 0) socket.destroy();
      if (closed && !draining) setImmediate(() => server.closeIdleConnections());
      st.requests.finished(res);
    });
    const fail = (error: unknown): void => {
      log.error({ event: 'mtls_handler_failed', code: error instanceof SpikeError ? error.code : 'internal' }, 'request handler threw');
      if (!res.headersSent) {
        const body = opts.internalErrorBody ?? '{"err":"internal_error"}';
        res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
        res.end(body);
      } else {
        res.destroy();
      }
    };
    if (req.rawHeaders.length >= 2 * HEAD_LIMITS.maxHeaderFields) {
      res.writeHead(431, { connection: 'close', 'content-length': 0 }).end();
      return;
    }
    try {
      const r = handler(req, res, state === 'revoked' ? null : st.grant.id);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
    } catch (error) {
      fail(error);
    }
  };

  /** Closes idle connections whose grant lapsed; busy ones close after their answer. */
  const sweep = (): void => {
    const now = Date.now();
    for (const [socket, st] of conns) {
      if (recheck(st, now) === 'revoked' && st.busy === 0) socket.destroy();
    }
  };
  const sweeper = o.sweepIntervalMs > 0 ? setInterval(sweep, o.sweepIntervalMs) : undefined;
  sweeper?.unref();

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
    // Authorities may have left the bundle: connections anchored in them go now.
    sweep();
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
      if (sweeper !== undefined) clearInterval(sweeper);
      warn.close();
      gate.close();
      if (!listening) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const grace = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, MTLS_DEFAULTS.closeGraceMs);
        grace.unref();
        draining = true;
        const drain = setTimeout(() => {
          draining = false;
          server.closeIdleConnections();
        }, MTLS_DEFAULTS.closeDrainMs);
        // Stops listening only: `https.Server#close` would also close the idle connections at once.
        tls.Server.prototype.close.call(server, () => {
          clearTimeout(grace);
          clearTimeout(drain);
          stopConnectionChecks(server);
          resolve();
        });
        for (const res of inflight) if (!res.headersSent) res.setHeader('connection', 'close');
      });
    },
    connections(): number {
      return sockets.size;
    },
    handshaking(): number {
      return admission.handshaking;
    },
    verified(): number {
      return admission.verifiedCount;
    },
  };
}
