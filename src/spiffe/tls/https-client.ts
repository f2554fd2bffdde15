/**
 * The mTLS client on Node's own `node:https` (D14), for callers that make a few requests and
 * must start fast (the CLI, through the SDK's `NexusClient.connect`): it loads nothing outside
 * Node, where undici costs ~150 ms of imports plus a WebAssembly parser tiering up before exit.
 *
 * Same security as the undici dispatcher (dialer.ts): every connection is dialled by
 * `dialMtls` (dial.ts), which hands the socket to the HTTP layer only after the server's SVID
 * verified and its SPIFFE ID was authorized, so a wrong server never receives a request byte;
 * TLS 1.3 only; the SVID and bundles are read afresh for each new connection (rotation).
 *
 * Its `request()` has the shape of undici's `Dispatcher.request` that the SDK uses (origin,
 * path, method, headers, body, signal → `{ statusCode, body }`), with the same timeouts:
 * connect (TCP + TLS + SVID check), response headers, and the gap between body chunks.
 * Keep-alive: idle pooled connections close after `keepAliveTimeoutMs` and never keep the
 * process alive. Requests are never replayed by this layer. At most `connections` requests per
 * origin are in flight (one per connection: HTTP/1.1, no pipelining); the rest wait in order.
 * The limit is kept here, not by `https.Agent`: the agent counts a socket only once it exists,
 * so with a dial that completes later (the SVID check) it would open one per waiting request;
 * and a request queued inside the agent is stranded when a queued dial fails.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { MtlsClientOptions } from './dialer.js';
import { MTLS_DEFAULTS } from './context.js';
import { contextCache, dialMtls, sniName } from './dial.js';

/** A client-side timeout; `code` says which one (stable). */
export class MtlsTimeoutError extends Error {
  constructor(readonly code: 'ERR_CONNECT_TIMEOUT' | 'ERR_HEADERS_TIMEOUT' | 'ERR_BODY_TIMEOUT') {
    super(code === 'ERR_CONNECT_TIMEOUT' ? 'connect timeout' : code === 'ERR_HEADERS_TIMEOUT' ? 'response headers timeout' : 'response body timeout');
    this.name = 'MtlsTimeoutError';
  }
}

/** An answer body longer than the reader's cap (readAnswer). */
export class AnswerTooLargeError extends Error {
  readonly code = 'ERR_ANSWER_TOO_LARGE';
  constructor() {
    super('answer body over the size limit');
    this.name = 'AnswerTooLargeError';
  }
}

/**
 * Reads a body whole, at most `maxBytes` (else {@link AnswerTooLargeError}, the body
 * destroyed); `signal`, when given, aborts the read too (for callers whose deadline covers the
 * body). The chunks read are zeroed once copied out or when the read fails (answers may carry
 * share values or secrets). The SDK's JSON calls, the Keeper client and Bootstrap read with it.
 */
export async function readAnswer(body: Readable, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
  const onAbort = (): void => void body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('deadline'));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > maxBytes) {
        b.fill(0);
        body.destroy();
        throw new AnswerTooLargeError();
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks, size);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const c of chunks) c.fill(0);
  }
}

/** The same options as the undici dispatcher's (one definition; a type import loads nothing). */
export type MtlsHttpsClientOptions = MtlsClientOptions;

export interface MtlsRequest {
  /** `https://host:port`. */
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | Readable;
  signal?: AbortSignal;
  /** Per-request overrides of the client's timeouts. */
  headersTimeout?: number;
  bodyTimeout?: number;
}

export interface MtlsResponse {
  statusCode: number;
  body: IncomingMessage;
}

export interface MtlsHttpsClient {
  request(r: MtlsRequest): Promise<MtlsResponse>;
  /** Closes every pooled connection; requests after this fail. */
  close(): Promise<void>;
}

/** Creates the `node:https` mTLS client (see the module comment). */
export function createMtlsHttpsClient(opts: MtlsHttpsClientOptions): MtlsHttpsClient {
  const { source, authorizeServer } = opts;
  const connectTimeoutMs = opts.connectTimeoutMs ?? MTLS_DEFAULTS.clientConnectTimeoutMs;
  const headersTimeoutMs = opts.headersTimeoutMs ?? MTLS_DEFAULTS.clientHeadersTimeoutMs;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? MTLS_DEFAULTS.clientBodyTimeoutMs;
  const context = contextCache(source);
  const agent = new https.Agent({
    keepAlive: true,
    // Never let the agent queue a request: the slots below bound requests in flight. A request
    // queued inside the agent waits for a socket of that origin to close, and when the server is
    // gone (its sockets already closed, every new dial refused) it would wait for ever.
    maxSockets: Infinity,
    timeout: opts.keepAliveTimeoutMs ?? MTLS_DEFAULTS.clientKeepAliveTimeoutMs,
    scheduling: 'lifo',
  });
  /**
   * Dials not settled yet, abandoned by close() (a dial may still wait for its handshake slot).
   * node:http asks for a connection synchronously inside `https.request()`, for that request
   * only, so `send` learns its request's dial from `lastDial` and abandons it when the request
   * is aborted before it has a socket: a dial never outlives the call that wanted it.
   */
  const dialing = new Set<(reason: Error) => void>();
  let lastDial: ((reason: Error) => void) | undefined;
  // Callback form: node:http gets the socket only once `dialMtls` has checked the server.
  (agent as unknown as { createConnection: unknown }).createConnection = (
    o: { host?: string; hostname?: string; port?: number | string; servername?: string; localAddress?: string },
    cb: (err: Error | null, socket?: unknown) => void,
  ): undefined => {
    let settled = false;
    let abandon: ((reason: Error) => void) | undefined;
    abandon = dialMtls(
      { hostname: o.hostname ?? o.host ?? 'localhost', port: Number(o.port) || 443, servername: o.servername, localAddress: o.localAddress },
      { source, authorizeServer, context, timeoutMs: connectTimeoutMs, timeoutError: () => new MtlsTimeoutError('ERR_CONNECT_TIMEOUT') },
      (err, socket) => {
        settled = true;
        if (abandon) dialing.delete(abandon);
        if (err) cb(err);
        else cb(null, socket);
      },
    );
    if (!settled) {
      dialing.add(abandon);
      lastDial = abandon;
    }
    return undefined;
  };
  let closed = false;
  const maxInFlight = opts.connections ?? MTLS_DEFAULTS.clientConnections;
  const slots = new Map<string, { active: number; waiting: Array<() => void> }>();

  /** Waits for one of the origin's `connections` slots; rejects with the abort reason if `signal` fires first. */
  const acquire = (origin: string, signal: AbortSignal | undefined): Promise<() => void> =>
    new Promise((resolve, reject) => {
      let slot = slots.get(origin);
      if (!slot) slots.set(origin, (slot = { active: 0, waiting: [] }));
      const s = slot;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        s.active--;
        s.waiting.shift()?.();
      };
      const take = (): void => {
        signal?.removeEventListener('abort', onAbort);
        s.active++;
        resolve(release);
      };
      const onAbort = (): void => {
        const i = s.waiting.indexOf(take);
        if (i >= 0) s.waiting.splice(i, 1);
        reject(signal?.reason);
      };
      if (signal?.aborted) reject(signal.reason);
      else if (s.active < maxInFlight) take();
      else {
        s.waiting.push(take);
        signal?.addEventListener('abort', onAbort, { once: true });
      }
    });

  const request = async (r: MtlsRequest): Promise<MtlsResponse> => {
    const release = await acquire(r.origin, r.signal);
    try {
      const res = await send(r, release);
      return res;
    } catch (e) {
      release();
      throw e;
    }
  };

  /** One request on a held slot; `release` runs once the answer is over (or failed). */
  const send = (r: MtlsRequest, release: () => void): Promise<MtlsResponse> =>
    new Promise<MtlsResponse>((resolve, reject) => {
      if (closed) {
        reject(Object.assign(new Error('client closed'), { code: 'ERR_CLIENT_CLOSED' }));
        return;
      }
      const url = new URL(r.origin);
      let headersTimer: NodeJS.Timeout | undefined;
      lastDial = undefined;
      const req = https.request({
        agent,
        protocol: 'https:',
        hostname: url.hostname,
        port: url.port === '' ? 443 : Number(url.port),
        // Given here, node:http does not work it out with net.isIP (see sniName).
        servername: sniName(url.hostname),
        path: r.path,
        method: r.method,
        headers: r.headers,
        ...(r.signal ? { signal: r.signal } : {}),
      });
      // The request settles on abort by itself too: node:http reports the abort of a request
      // that has no socket yet only once it gets one, which may be never.
      // Set (or not) by createConnection during https.request() above; TS cannot see that.
      const dial = lastDial as ((reason: Error) => void) | undefined; // undefined: a pooled connection was free
      lastDial = undefined;
      const signal = r.signal;
      const onAbort = (): void => {
        clearTimeout(headersTimer);
        reject(signal?.reason);
        req.destroy();
        dial?.(signal?.reason instanceof Error ? signal.reason : new Error('request aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settled = (): void => signal?.removeEventListener('abort', onAbort);
      // `on`, not `once`: an abort after the answer arrived must not become an unhandled error.
      req.on('error', (e) => {
        clearTimeout(headersTimer);
        settled();
        reject(e);
      });
      let answered = false;
      req.once('finish', () => {
        // An answer before the body was all sent (a refusal before reading) needs no timer; one
        // armed anyway would keep the process alive for the whole timeout.
        if (answered) return;
        headersTimer = setTimeout(() => req.destroy(new MtlsTimeoutError('ERR_HEADERS_TIMEOUT')), r.headersTimeout ?? headersTimeoutMs);
      });
      req.once('response', (res: IncomingMessage) => {
        answered = true;
        clearTimeout(headersTimer);
        // The body timeout counts the gap between bytes from the server. It watches the socket
        // (which the HTTP parser already reads), never `res`, so the body is not drained here.
        const gap = r.bodyTimeout ?? bodyTimeoutMs;
        const sock = res.socket;
        const bodyTimer = setTimeout(() => res.destroy(new MtlsTimeoutError('ERR_BODY_TIMEOUT')), gap);
        const onData = (): void => void bodyTimer.refresh();
        sock?.on('data', onData);
        const stop = (): void => {
          clearTimeout(bodyTimer);
          sock?.off('data', onData);
          release();
        };
        res.once('end', stop);
        res.once('close', stop);
        res.on('error', () => { /* seen by whoever reads the body */ });
        settled();
        resolve({ statusCode: res.statusCode ?? 0, body: res });
      });
      if (Buffer.isBuffer(r.body)) req.end(r.body);
      else {
        r.body.once('error', (e) => req.destroy(e));
        r.body.pipe(req);
      }
    });

  return {
    request,
    close: async () => {
      closed = true;
      // Newest first: abandoning a running dial frees its handshake slot, which would start the
      // next queued dial of this same client.
      for (const abandon of [...dialing].reverse()) abandon(Object.assign(new Error('client closed'), { code: 'ERR_CLIENT_CLOSED' }));
      agent.destroy();
    },
  };
}
