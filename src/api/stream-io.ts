/**
 * Request/response byte plumbing of the router's stream mode (moved out of router.ts, which
 * keeps the pipeline): the declared `Content-Length`, a byte-capped pull reader over the
 * request body ({@link cappedChunks}) and a back-pressured writer for streamed replies
 * ({@link writeStreamReply}). See router.ts for how they are used.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { ApiError, ERR, REASON, badRequest, payloadTooLarge } from './errors.js';
import { OCTET_STREAM } from '../protocol/index.js';

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/** A streamed `application/octet-stream` answer. */
export interface StreamReply {
  readonly kind: 'stream';
  /** Reply chunks; each is zeroed after it was flushed. Throwing aborts the reply. */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Total byte length when known up front (sent as `Content-Length`). */
  readonly length?: number;
}

export function isHttp1(req: Request): boolean {
  return (req.httpVersionMajor ?? 1) < 2;
}

/**
 * The declared `Content-Length`: `undefined` when absent, `null` when unusable (the HTTP
 * parser already refuses malformed values; this is defence in depth).
 */
export function declaredLength(req: Request): number | undefined | null {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9]{1,16}$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

export function isStreamReply(x: unknown): x is StreamReply {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && (x as { kind?: unknown }).kind === 'stream';
}

/**
 * The request body as chunks pulled with `read()` (paused mode), so the socket is only read
 * as fast as the consumer asks. The byte cap is checked on the running count. Never uses
 * the stream's own async iterator: leaving that early would destroy the socket, and an
 * error answer could not be sent.
 */
export async function* cappedChunks(req: Request, maxBytes: number): AsyncGenerator<Buffer> {
  let total = 0;
  for (;;) {
    const chunk = req.read() as Buffer | null;
    if (chunk !== null) {
      total += chunk.length;
      if (total > maxBytes) {
        chunk.fill(0);
        req.pause();
        throw payloadTooLarge();
      }
      yield chunk;
      continue;
    }
    if (req.readableEnded) return;
    // Already destroyed (client gone while the consumer was busy): no event will come again.
    if (req.destroyed) throw badRequest(REASON.readFailed, 'failed to read request body', { closeConnection: true });
    await new Promise<void>((resolve, reject) => {
      const done = (err?: ApiError): void => {
        req.off('readable', onReadable);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onReadable = (): void => done();
      const onEnd = (): void => done();
      const onError = (): void => done(badRequest(REASON.readFailed, 'failed to read request body', { closeConnection: true }));
      const onClose = (): void => {
        if (req.readableEnded) done();
        else onError();
      };
      req.on('readable', onReadable);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('close', onClose);
    });
  }
}

/** Resolves on `drain`, or on `close` (the caller then notices the destroyed response). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Writes a streamed reply with back-pressure. The 200 head goes out with the first chunk; an
 * error before that propagates (normal error answer); an error after it destroys the
 * response so the reply is visibly truncated.
 */
export async function writeStreamReply(req: Request, res: Response, reply: StreamReply, setStatus: (code: number) => void): Promise<void> {
  const w = res as ServerResponse;
  let started = false;
  const start = (): void => {
    started = true;
    setStatus(200);
    res.statusCode = 200;
    res.setHeader('Content-Type', OCTET_STREAM);
    if (reply.length !== undefined) res.setHeader('Content-Length', String(reply.length));
  };
  try {
    for await (const c of reply.chunks) {
      if (w.destroyed) throw new ApiError(ERR.badRequest, 'client went away', { reason: 'client_closed' });
      if (c.length === 0) continue;
      if (!started) start();
      const buf = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      if (!w.write(buf, () => buf.fill(0))) await drained(res);
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
    if ((req as IncomingMessage).complete === false && isHttp1(req)) (req as IncomingMessage).socket.end();
  } catch (e) {
    if (!started) throw e;
    setStatus(e instanceof ApiError ? e.status : 500);
    w.destroy();
    if (isHttp1(req)) (req as IncomingMessage).socket.destroy();
    throw e;
  }
}
