/**
 * gRPC server-streaming calls over `node:http2`, for the Workload API's client side: a one-shot
 * fetch (client.ts) reads the first message, the watching source every one; neither loads
 * grpc-js (start-up time and size of every process that fetches an SVID).
 * It speaks the gRPC-over-HTTP/2 rules a unary-request / streaming-response call uses:
 * `POST <path>` with `content-type: application/grpc`, `te: trailers`, `grpc-timeout` (a call
 * with a deadline), the Workload API security header, an empty request message (5-byte prefix); the answer is
 * length-prefixed messages then trailers with `grpc-status` (or a trailers-only answer). An
 * answer with an HTTP status other than 200 and no `grpc-status` delivers no message; as in
 * grpc-js, its status is the trailers' `grpc-status` if they carry one, else the HTTP status
 * mapped to a gRPC code when the stream ends (so such an answer that stays open holds a one-shot
 * fetch until its deadline, and a watch until its stall check).
 * Compressed messages are refused (we never offer an encoding), a declared length over the
 * limit is `RESOURCE_EXHAUSTED` before anything is buffered, a call that outlives its deadline
 * is `DEADLINE_EXCEEDED`. A one-shot fetch cancels the stream and destroys the session as soon
 * as the first message is in: nothing stays open. The watching source (x509-source.ts) reads
 * every message of one such call and makes a new call when it ends (its own backoff).
 * A caller may hand over synchronous work to run while the agent prepares its answer
 * (`whileWaiting`: once the request is on its way, at most once, its failure ignored).
 */
import http2 from 'node:http2';
import net from 'node:net';
import type { WorkloadEndpoint } from './endpoint.js';
import { GRPC_STATUS } from './errors.js';
import { WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE } from './proto.js';

/** The first message, or the status the call ended with (`noListener`: nobody listens at the address). */
export type FirstMessageOutcome = { ok: true; message: Buffer } | { ok: false; status: number; noListener: boolean };

/** Connection errors meaning nobody listens at the address. */
export const NO_LISTENER: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;

/** What `net.connect` needs for the endpoint's target (`unix:///path` or `ip:port`, IPv6 in brackets). */
export function connectOptions(ep: WorkloadEndpoint): net.NetConnectOpts {
  if (ep.target.startsWith('unix://')) return { path: ep.target.slice('unix://'.length) };
  const i = ep.target.lastIndexOf(':');
  return { host: ep.target.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(ep.target.slice(i + 1)) };
}

/** gRPC's mapping of an HTTP status without `grpc-status` to a gRPC code. */
function httpToGrpc(status: number): number {
  if (status === 400) return GRPC_STATUS.INTERNAL;
  if (status === 401) return GRPC_STATUS.UNAUTHENTICATED;
  if (status === 403) return GRPC_STATUS.PERMISSION_DENIED;
  if (status === 404) return GRPC_STATUS.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return GRPC_STATUS.UNAVAILABLE;
  return GRPC_STATUS.UNKNOWN;
}

function grpcStatusOf(headers: http2.IncomingHttpHeaders): number | undefined {
  const v = headers['grpc-status'];
  if (typeof v !== 'string' || !/^\d{1,2}$/.test(v)) return v === undefined ? undefined : GRPC_STATUS.UNKNOWN;
  return Number(v);
}

/** What a server-streaming call reports; never called after {@link StreamCall.cancel}. */
export interface StreamHandlers {
  /** One whole message, in order; the receiver owns it (and zeroes it). */
  onMessage(message: Buffer): void;
  /** The call ended, once: its gRPC status (`noListener`: nobody listens at the address). */
  onEnd(status: number, noListener: boolean): void;
}

export interface StreamCallOptions {
  /** Deadline of the whole call, also sent as `grpc-timeout`; unset: none (a watch). */
  timeoutMs?: number;
  /** Largest message accepted (default 4 MiB); a larger declared length ends the call with `RESOURCE_EXHAUSTED`. */
  maxMessageBytes?: number;
  /** See {@link firstStreamMessage}. */
  whileWaiting?: () => void;
}

export interface StreamCall {
  /** Ends the call (stream cancelled, connection closed) without calling `onEnd`. Idempotent. */
  cancel(): void;
}

/**
 * Calls `path` (a server-streaming method taking an empty request) on the endpoint, on a
 * connection of its own, and hands over each message as it completes until the call ends or is
 * cancelled. Handlers are only ever called from later event-loop work, never from inside this
 * call. Received bytes are zeroed once a message has been cut out of them (SVID keys).
 */
export function serverStream(ep: WorkloadEndpoint, path: string, h: StreamHandlers, o: StreamCallOptions = {}): StreamCall {
  const maxMessageBytes = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  let done = false;
  let req: http2.ClientHttp2Stream | undefined;
  let chunks: Buffer[] = [];
  let buffered = 0;
  let want = -1;
  let status: number | undefined;
  /** A non-200 HTTP status without `grpc-status`: mapped when the call ends, unless trailers bring one. */
  let httpStatus: number | undefined;
  /** The status to end with: the one received, else the mapped HTTP status, else `otherwise`. */
  const final = (otherwise: number): number => status ?? (httpStatus === undefined ? otherwise : httpToGrpc(httpStatus));
  let timer: NodeJS.Timeout | undefined;
  let session: http2.ClientHttp2Session | undefined;
  /** Tears the call down; false when it already was. */
  const close = (): boolean => {
    if (done) return false;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    for (const c of chunks) c.fill(0);
    chunks = [];
    buffered = 0;
    if (req !== undefined && !req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    session?.destroy();
    return true;
  };
  const end = (st: number, noListener = false): void => {
    if (close()) h.onEnd(st, noListener);
  };
  /** Checks a message's 5-byte prefix and sets `want`; false (and the call ended) when refused. */
  const prefixOk = (head: Buffer): boolean => {
    if (head[0] !== 0) {
      end(GRPC_STATUS.INTERNAL); // compressed (never offered) or invalid flag
      return false;
    }
    const len = head.readUInt32BE(1);
    if (len > maxMessageBytes) {
      end(GRPC_STATUS.RESOURCE_EXHAUSTED);
      return false;
    }
    want = 5 + len;
    return true;
  };
  try {
    session = http2.connect('http://localhost', { createConnection: () => net.connect(connectOptions(ep)), settings: { enablePush: false } });
    session.on('error', (e: NodeJS.ErrnoException) => end(GRPC_STATUS.UNAVAILABLE, e.code !== undefined && NO_LISTENER.has(e.code)));
    session.on('close', () => end(status ?? GRPC_STATUS.UNAVAILABLE));
    req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(o.timeoutMs === undefined ? {} : { 'grpc-timeout': `${Math.min(Math.max(1, Math.ceil(o.timeoutMs)), 99_999_999)}m` }),
      [WORKLOAD_API_HEADER]: WORKLOAD_API_HEADER_VALUE,
    });
  } catch {
    queueMicrotask(() => end(GRPC_STATUS.UNAVAILABLE));
    return { cancel: () => void close() };
  }
  if (o.timeoutMs !== undefined) timer = setTimeout(() => end(GRPC_STATUS.DEADLINE_EXCEEDED), o.timeoutMs);
  const whileWaiting = o.whileWaiting;
  if (whileWaiting !== undefined) {
    req.once('ready', () =>
      setImmediate(() => {
        if (done) return;
        try {
          whileWaiting();
        } catch {
          /* an optimization only: never changes the call's outcome */
        }
      }),
    );
  }
  req.on('response', (headers) => {
    const http = Number(headers[':status']);
    const st = grpcStatusOf(headers);
    if (st !== undefined) status = st; // trailers-only answer
    else if (http !== 200) httpStatus = http;
    else if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) end(GRPC_STATUS.UNKNOWN);
  });
  req.on('trailers', (trailers) => {
    status = grpcStatusOf(trailers) ?? final(GRPC_STATUS.UNKNOWN);
  });
  req.on('data', (chunk: Buffer) => {
    if (done || httpStatus !== undefined) {
      chunk.fill(0);
      return;
    }
    chunks.push(chunk);
    buffered += chunk.length;
    if (want < 0) {
      if (buffered < 5) return;
      // Only the 5-byte prefix is copied out before a message is whole: a concatenation per
      // chunk would leave more copies of SVID key bytes to wipe.
      const head = Buffer.alloc(5);
      for (let off = 0, i = 0; off < 5; i++) off += chunks[i]!.copy(head, off, 0, 5 - off);
      if (!prefixOk(head)) return;
    }
    if (buffered < want) return;
    // One concatenation per arrival, then every whole message in it is cut out by offset (a
    // DATA frame may hold many), and only the unfinished tail is kept.
    const all = Buffer.concat(chunks, buffered);
    for (const c of chunks) c.fill(0);
    chunks = [];
    buffered = 0;
    let at = 0;
    try {
      while (!done) {
        if (want < 0) {
          if (all.length - at < 5) break;
          if (!prefixOk(all.subarray(at, at + 5))) return;
        }
        if (all.length - at < want) break;
        const message = Buffer.from(all.subarray(at + 5, at + want));
        at += want;
        want = -1;
        h.onMessage(message);
      }
      if (!done && at < all.length) {
        chunks = [Buffer.from(all.subarray(at))];
        buffered = all.length - at;
      }
    } finally {
      all.fill(0);
    }
  });
  // A reset or a broken connection is not a clean end: a kept HTTP status is not mapped (grpc-js).
  req.on('error', () => end(status ?? GRPC_STATUS.UNAVAILABLE));
  req.on('close', () => {
    const otherwise = want >= 0 ? GRPC_STATUS.INTERNAL : GRPC_STATUS.UNKNOWN;
    // Only a clean end maps a kept HTTP status; a stream reset with an error code does not.
    const clean = req.rstCode === undefined || req.rstCode === http2.constants.NGHTTP2_NO_ERROR;
    end(clean ? final(otherwise) : (status ?? otherwise));
  });
  req.end(Buffer.alloc(5));
  return { cancel: () => void close() };
}

/**
 * Calls `path` (a server-streaming method taking an empty request) on the endpoint and
 * resolves with its first message, or with the status the call ended with. Never rejects.
 * `whileWaiting` runs once the stream is open and the request handed to the session (one
 * turn of the event loop later, so its frames are written first), unless the call already
 * ended; an exception from it is ignored.
 */
export function firstStreamMessage(
  ep: WorkloadEndpoint,
  path: string,
  timeoutMs: number,
  maxMessageBytes = DEFAULT_MAX_MESSAGE,
  whileWaiting?: () => void,
): Promise<FirstMessageOutcome> {
  return new Promise((resolve) => {
    const call = serverStream(ep, path, {
      onMessage: (message) => {
        call.cancel();
        resolve({ ok: true, message });
      },
      onEnd: (status, noListener) => resolve({ ok: false, status, noListener }),
    }, { timeoutMs, maxMessageBytes, ...(whileWaiting === undefined ? {} : { whileWaiting }) });
  });
}
