/**
 * Writing answers: JSON (Go-encoded, with the no-cache headers), errors (the route's error
 * shape, or plain text), raw bytes, and streamed `application/octet-stream` replies.
 *
 * Every answer records its status on the {@link ReplyTarget} for the log line, is written only
 * if no head went out yet, and zeroes its body once flushed (bodies may be secrets). A
 * streamed reply is written chunk by chunk with back-pressure; its 200 head goes out with the
 * first chunk, so an error before it becomes a normal error answer, while an error after it
 * destroys the response (a client never takes a truncated reply for a complete one).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { wasFreed, wipeAndFree } from '../crypto/curve-free.js';
import { bodyFullyTaken } from './body.js';
import { type Request, type Response, endResponse, isHttp1 } from './connection.js';
import { ApiError, PlainTextError, errorCode } from './errors.js';
import { type GoJsonValue, goJson } from './gojson.js';
import type { LingerLimits } from './linger.js';

/** The content type of raw-byte requests and answers (the stream variant of a route). */
export const OCTET_STREAM = 'application/octet-stream';

/** The JSON error body of a route, given the wire code (its zero-valued response plus the code). */
export type ErrorShape = (code: string) => { readonly [k: string]: GoJsonValue };

/** The error body of routes that declare none: `{"err": code}`. */
export const defaultErrorShape: ErrorShape = (code) => ({ err: code });

/** What writing an answer needs, and where it records what was sent (the request's exchange). */
export interface ReplyTarget {
  readonly req: Request;
  /** Random 16 hex digits, sent back as `X-Request-Id` (every answer's first header, after any set on the response before it) and written to the log and audit lines. */
  readonly requestId: string;
  readonly res: Response;
  readonly linger: LingerLimits;
  /** The error body to use (the matched route's, or the default). */
  errorShape: ErrorShape;
  /** The status answered. */
  status: number;
  /** The error reason answered, for the log line. */
  reason: string | undefined;
}

/** A streamed `application/octet-stream` answer. */
export interface StreamReply {
  readonly kind: 'stream';
  /**
   * Reply chunks, handed over: each is zeroed once flushed, and its memory freed then when it
   * spans a whole ArrayBuffer (`wipeAndFree`), so the producer keeps no view of a chunk it
   * yields. Throwing aborts the reply.
   */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Total byte length when known up front (sent as `Content-Length`). */
  readonly length?: number;
}

export function isStreamReply(x: unknown): x is StreamReply {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && (x as { kind?: unknown }).kind === 'stream';
}

/**
 * Sends an encoded JSON body with status `code`. The head is handed to `writeHead` as one list
 * of name/value pairs (connection.ts), which Node writes without building its header map: about
 * 1 µs less per answer than six `setHeader` calls (issue 17).
 */
export function sendJson(x: ReplyTarget, code: number, body: Buffer, close: boolean): void {
  x.status = code;
  const { req, res } = x;
  if (res.headersSent) return;
  const head = [
    'X-Request-Id', x.requestId,
    'Content-Type', 'application/json',
    'Cache-Control', 'no-store, no-cache, must-revalidate, private',
    'Pragma', 'no-cache',
    'Expires', '0',
    'Content-Length', String(body.length),
  ];
  endResponse(req, res, code, head, body, close, x.linger);
}

/** Sends an error: plain text for a {@link PlainTextError}, else the exchange's error shape. */
export function sendError(x: ReplyTarget, err: ApiError): void {
  x.reason = err.reason;
  if (err instanceof PlainTextError) {
    x.status = err.status;
    const { req, res } = x;
    if (res.headersSent) return;
    const body = Buffer.from(err.text + '\n', 'utf8');
    const head = [
      'X-Request-Id', x.requestId,
      'Content-Type', 'text/plain; charset=utf-8',
      'X-Content-Type-Options', 'nosniff',
      'Content-Length', String(body.length),
    ];
    endResponse(req, res, err.status, head, body, err.closeConnection, x.linger);
    return;
  }
  const obj: Record<string, GoJsonValue> = { ...x.errorShape(err.code) };
  if (err.expose) obj['message'] = err.message;
  if (err.fields) for (const [k, v] of Object.entries(err.fields)) obj[k] ??= v;
  sendJson(x, err.status, goJson(obj), err.closeConnection);
}

/** Sends raw bytes as a 200 `application/octet-stream` answer. */
export function sendBytes(x: ReplyTarget, bytes: Uint8Array): void {
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  x.status = 200;
  const { req, res } = x;
  if (res.headersSent) return;
  const head = ['X-Request-Id', x.requestId, 'Content-Type', OCTET_STREAM, 'Content-Length', String(body.length)];
  endResponse(req, res, 200, head, body, false, x.linger);
}

/** Reply bytes a streamed answer queues on its socket before it waits for `drain`. */
export const STREAM_REPLY_BUFFER_BYTES = 64 * 1024;

/**
 * Resolves on `drain`, or on `close` (the caller then notices the destroyed response). On
 * HTTP/1.1 also on the socket's close: a response queued behind an earlier one on a pipelined
 * connection never sees its own 'close' when the client goes away.
 */
function drained(res: Response, socket: Socket | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (socket?.destroyed === true) {
      resolve();
      return;
    }
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      socket?.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    socket?.on('close', done);
  });
}

/**
 * Writes a streamed reply with back-pressure. The 200 head goes out with the first chunk; an
 * error before that propagates (normal error answer); an error after it destroys the
 * response so the reply is visibly truncated.
 */
export async function sendStream(x: ReplyTarget, reply: StreamReply): Promise<void> {
  const req: Request = x.req;
  const w = x.res as ServerResponse;
  const socket = isHttp1(req) ? (req as IncomingMessage).socket : undefined;
  let started = false;
  const start = (): void => {
    started = true;
    x.status = 200;
    w.statusCode = 200;
    w.setHeader('X-Request-Id', x.requestId);
    w.setHeader('Content-Type', OCTET_STREAM);
    if (reply.length !== undefined) w.setHeader('Content-Length', String(reply.length));
  };
  try {
    for await (const c of reply.chunks) {
      // Checked on the socket too: the response learns of a destroyed socket only a turn later,
      // and Node never calls back a write to a destroyed socket (the chunk would stay as it was).
      if (w.destroyed || socket?.destroyed === true) {
        wipeAndFree(c);
        throw new ApiError(errorCode('badRequest'), 'client went away', { reason: 'client_closed' });
      }
      if (c.length === 0) {
        // A freed chunk reads as empty: its producer yielded it twice or kept it. Cut the reply
        // visibly rather than send it short.
        if (wasFreed(c)) throw new Error('stream reply chunk was used after it was handed over');
        continue;
      }
      if (!started) start();
      const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      // Waits only once a few chunks are queued: chunks written in one turn of the event loop
      // leave in one socket write (the response corks until the next tick), not one each (P5).
      if (!w.write(buf, () => wipeAndFree(buf)) && w.writableLength >= STREAM_REPLY_BUFFER_BYTES) await drained(x.res, socket);
    }
    if (!started) start();
    await new Promise<void>((resolve) => {
      if (w.destroyed) {
        resolve();
        return;
      }
      w.end(() => resolve());
      w.once('close', () => resolve());
    });
    if (socket !== undefined && !bodyFullyTaken(req as IncomingMessage)) socket.end();
  } catch (e) {
    if (!started) throw e;
    x.status = e instanceof ApiError ? e.status : 500;
    w.destroy();
    socket?.destroy();
    throw e;
  }
}
