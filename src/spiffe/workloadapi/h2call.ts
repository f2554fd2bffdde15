/**
 * One gRPC server-streaming call over `node:http2`, reading only the first message: what a
 * one-shot Workload API fetch (client.ts) needs, without loading grpc-js (CLI start-up time).
 * It speaks the gRPC-over-HTTP/2 rules a unary-request / streaming-response call uses:
 * `POST <path>` with `content-type: application/grpc`, `te: trailers`, `grpc-timeout`, the
 * Workload API security header, an empty request message (5-byte prefix); the answer is
 * length-prefixed messages then trailers with `grpc-status` (or a trailers-only answer).
 * Compressed messages are refused (we never offer an encoding), a declared length over the
 * limit is `RESOURCE_EXHAUSTED` before anything is buffered, a call that outlives its deadline
 * is `DEADLINE_EXCEEDED`. The stream is cancelled and the session destroyed as soon as the
 * first message is in: nothing stays open. The watching source keeps grpc-js (reconnects).
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
    let done = false;
    let req: http2.ClientHttp2Stream | undefined;
    const chunks: Buffer[] = [];
    let buffered = 0;
    let want = -1;
    let status: number | undefined;
    const session = http2.connect('http://localhost', { createConnection: () => net.connect(connectOptions(ep)), settings: { enablePush: false } });
    const finish = (r: FirstMessageOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const c of chunks) c.fill(0);
      chunks.length = 0;
      if (req !== undefined && !req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      session.destroy();
      resolve(r);
    };
    const fail = (st: number, noListener = false): void => finish({ ok: false, status: st, noListener });
    const timer = setTimeout(() => fail(GRPC_STATUS.DEADLINE_EXCEEDED), timeoutMs);
    session.on('error', (e: NodeJS.ErrnoException) => fail(GRPC_STATUS.UNAVAILABLE, e.code !== undefined && NO_LISTENER.has(e.code)));
    session.on('close', () => fail(status ?? GRPC_STATUS.UNAVAILABLE));
    try {
      req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.min(Math.max(1, Math.ceil(timeoutMs)), 99_999_999)}m`,
        [WORKLOAD_API_HEADER]: WORKLOAD_API_HEADER_VALUE,
      });
    } catch {
      fail(GRPC_STATUS.UNAVAILABLE);
      return;
    }
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
      else if (http !== 200) fail(httpToGrpc(http));
      else if (!String(headers['content-type'] ?? '').startsWith('application/grpc')) fail(GRPC_STATUS.UNKNOWN);
    });
    req.on('trailers', (trailers) => {
      status = grpcStatusOf(trailers) ?? GRPC_STATUS.UNKNOWN;
    });
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      buffered += chunk.length;
      if (want < 0 && buffered >= 5) {
        // Only the 5-byte prefix is copied out: a full concatenation here would be one more
        // copy of SVID key bytes that nothing wipes.
        const head = Buffer.alloc(5);
        for (let o = 0, i = 0; o < 5; i++) o += chunks[i]!.copy(head, o, 0, 5 - o);
        if (head[0] !== 0) return fail(GRPC_STATUS.INTERNAL); // compressed (never offered) or invalid flag
        const len = head.readUInt32BE(1);
        if (len > maxMessageBytes) return fail(GRPC_STATUS.RESOURCE_EXHAUSTED);
        want = 5 + len;
      }
      if (want >= 0 && buffered >= want) {
        const all = Buffer.concat(chunks, buffered);
        const message = Buffer.from(all.subarray(5, want));
        all.fill(0);
        finish({ ok: true, message });
      }
    });
    req.on('error', () => fail(status ?? GRPC_STATUS.UNAVAILABLE));
    req.on('close', () => fail(status ?? (want >= 0 ? GRPC_STATUS.INTERNAL : GRPC_STATUS.UNKNOWN)));
    req.end(Buffer.alloc(5));
  });
}
