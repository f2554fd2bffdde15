/**
 * One mTLS connection to a SPIFFE server, shared by both HTTP clients (the undici dispatcher
 * in dialer.ts and the `node:https` client in https-client.ts): the TLS socket is built from
 * the source's *current* SVID and bundles (so new connections follow rotation), TLS 1.3 only,
 * and the server's SVID is verified and its SPIFFE ID authorized (peer.ts) before the socket
 * is handed to the HTTP layer, so a wrong server never receives a request byte. There is no
 * hostname check: the server is identified by its SPIFFE ID only. A host name with a single
 * address is looked up here and dialled by address, its SNI name still sent (resolve.ts).
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { X509Source } from '../source.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import type { Authorizer } from '../authorize.js';
import { TLS_BASE, secureContextFor } from './context.js';
import { PeerRejectedError, checkPeer } from './peer.js';
import { canSetServername, lookupSingle, prefetchLookup, setServername } from './resolve.js';
import { awaitDialTurn, type DialTurn } from './dial-gate.js';

/**
 * A dial that failed before the socket reached the HTTP layer: not one request byte was sent,
 * so the SDK may send the request again (the server closed the handshake, refused, …). The
 * cause is the socket's own error. A rejected server (`PeerRejectedError`) and a connect
 * timeout are reported as themselves.
 */
export class DialFailedError extends Error {
  readonly code = 'ERR_MTLS_DIAL_FAILED';
  constructor(cause: Error) {
    super('mTLS dial failed before any request byte was sent', { cause });
    this.name = 'DialFailedError';
  }
}

export interface DialTarget {
  /** Host name or IP literal (IPv6 with or without brackets). */
  hostname: string;
  port: number;
  servername?: string | undefined;
  localAddress?: string | undefined;
}

/**
 * The secure context for the source's current SVID and bundles, rebuilt only when either
 * changed. Sources replace both objects on every update (they are treated as immutable), so a
 * changed object means rotation. Even a stale `ca` list could not let a wrong server through:
 * the SVID check after the handshake reads the live source.
 */
export function contextCache(source: X509Source): () => tls.SecureContext {
  let cached: { svid: X509Svid; bundles: X509BundleSet; context: tls.SecureContext } | undefined;
  return () => {
    const svid = source.getX509Svid();
    const bundles = source.bundleSet();
    if (cached?.svid !== svid || cached.bundles !== bundles) {
      cached = { svid, bundles, context: secureContextFor(source) };
    }
    return cached.context;
  };
}

/**
 * An IP literal (no SNI for it)? A host name never contains ':', so only IPv4 goes through
 * net.isIPv4: net.isIP compiles node's large IPv6 pattern (~8 ms) for a host name, and each
 * further call on a new name costs its tier-up (node:net still calls it once per connect).
 */
export function isIpLiteral(host: string): boolean {
  return host.includes(':') || net.isIPv4(host);
}

/** The SNI name for a URL host name (brackets allowed around IPv6): '' for an IP literal. */
export function sniName(hostname: string): string {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  return isIpLiteral(host) ? '' : host;
}

/** Starts the address lookup of a URL host name now, for its first dial (resolve.ts); nothing for an IP literal. */
export function prefetchDial(hostname: string): void {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (host !== '' && !isIpLiteral(host) && canSetServername) prefetchLookup(host);
}

/** A dial waits for its handshake slot at most this many connect timeouts (see dialMtls). */
export const MAX_WAIT_TIMEOUTS = 3;

/**
 * How much longer (ms) a dial queued at `queuedAt` may wait for its handshake slot at `now`,
 * the last handshake to its target having succeeded at `lastSuccessAt`; 0 or less: it times out.
 */
export function slotWaitLeft(now: number, queuedAt: number, lastSuccessAt: number, timeoutMs: number): number {
  const quiet = timeoutMs - (now - Math.max(queuedAt, lastSuccessAt));
  const cap = MAX_WAIT_TIMEOUTS * timeoutMs - (now - queuedAt);
  return Math.min(quiet, cap);
}

export interface DialOptions {
  source: X509Source;
  authorizeServer: Authorizer;
  /** From {@link contextCache} over the same source. */
  context: () => tls.SecureContext;
  /** TCP connect + TLS handshake + SVID check. */
  timeoutMs: number;
  /** The error for a connect timeout (each HTTP client has its own class). */
  timeoutError: () => Error;
}

/**
 * Dials `target`; `callback` gets the socket only after the server's SVID verified and
 * `authorizeServer` accepted its ID, else an error (`PeerRejectedError` for a rejected
 * server) and the socket is destroyed. The returned function abandons the dial (waiting or
 * running) if it has not settled yet; `callback` then gets `reason` itself.
 */
export function dialMtls(target: DialTarget, o: DialOptions, callback: (err: Error | null, socket: TLSSocket | null) => void): (reason: Error) => void {
  let settled = false;
  let socket: TLSSocket | null = null;
  let timeout: Error | undefined;
  let abandoned: Error | undefined;
  let turn: DialTurn | undefined;
  const leave = (ok: boolean): void => {
    turn?.cancel();
    turn?.done(ok);
  };
  const finish = (err: Error | null, s: TLSSocket | null): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    leave(err === null);
    if (err) {
      s?.destroy();
      callback(err instanceof PeerRejectedError || err === timeout || err === abandoned ? err : new DialFailedError(err), null);
    } else if (s) {
      callback(null, s);
    }
  };
  let secureContext: tls.SecureContext;
  try {
    secureContext = o.context();
  } catch (error) {
    callback(error instanceof Error ? error : new Error('no usable X.509-SVID'), null);
    return () => undefined;
  }
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const servername = isIpLiteral(host) ? undefined : (target.servername || host);
  // The wait for a handshake slot (dial-gate.ts) ends in a connect timeout when no handshake
  // to this target succeeded for a whole connect timeout since this dial joined the queue, and
  // in any case after MAX_WAIT_TIMEOUTS connect timeouts: a queue that moves is waited out
  // (many clients in one process opening their pools at once, on a loaded machine), a server
  // that stopped answering fails every waiting dial within one timeout, and one that lets a
  // handshake through now and then cannot hold a dial (and the caller's fail-over) for ever.
  // The dial itself then gets the whole connect timeout again (restarted in `begin`).
  const queuedAt = performance.now();
  let started = false;
  const expire = (): void => {
    if (!started) {
      const left = slotWaitLeft(performance.now(), queuedAt, turn?.lastSuccessAt() ?? -Infinity, o.timeoutMs);
      if (left > 0) {
        timer = setTimeout(expire, left);
        return;
      }
    }
    finish((timeout = o.timeoutError()), socket);
  };
  let timer = setTimeout(expire, o.timeoutMs);
  /** Connects to `address`; the SNI name goes in the options, or after the connect call (resolve.ts). */
  const open = (address: string, sniLater: boolean): void => {
    const s = tls.connect({
      host: address,
      port: target.port || 443,
      ...(servername && !sniLater ? { servername } : {}),
      secureContext,
      minVersion: TLS_BASE.minVersion,
      rejectUnauthorized: true,
      // The server is identified by its SPIFFE ID (checked below), never by a host name.
      checkServerIdentity: () => undefined,
      ALPNProtocols: ['http/1.1'],
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
    });
    socket = s;
    if (servername && sniLater) setServername(s, servername); // before the ClientHello, like tls.connect
    s.setNoDelay(true);
    s.setKeepAlive(true, 60_000);
    s.once('secureConnect', () => {
      const check = checkPeer(s, o.source, o.authorizeServer);
      if (check.ok) finish(null, s);
      else finish(new PeerRejectedError(check.reason, check.error !== undefined ? { cause: check.error } : undefined), s);
    });
    s.on('error', (err) => finish(err, s));
  };
  const start = (): void => {
    if (servername === undefined || target.localAddress || !canSetServername) {
      open(host, false);
      return;
    }
    // A host name: looked up here when it has one address (see resolve.ts), else left to node:net.
    lookupSingle(host, (err, address) => {
      if (settled) return; // timed out meanwhile
      if (err) finish(err, null);
      else if (address !== undefined) open(address, true);
      else open(host, false);
    });
  };
  // Never throws into the gate (it may run inside another dial's `finish`): an error raised
  // at once (bad options) settles this dial on the next tick, which frees its slot.
  const begin = (): void => {
    started = true;
    clearTimeout(timer);
    timer = setTimeout(expire, o.timeoutMs);
    try {
      start();
    } catch (e) {
      process.nextTick(() => finish(e instanceof Error ? e : new Error('dial failed'), socket));
    }
  };
  turn = awaitDialTurn(`${host}|${target.port || 443}`, begin);
  if (settled) leave(false); // settled while starting (an error raised at once)
  return (reason) => {
    if (settled) return;
    abandoned = reason;
    finish(reason, socket);
  };
}
