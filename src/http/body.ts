/**
 * The one byte-capped request-body reader, used by both pipelines.
 *
 * {@link cappedChunks} pulls the body chunk by chunk (one 'data' event per resume), so the
 * socket is only read as fast as the consumer asks, and checks the cap on the running count
 * before a chunk is handed on. {@link readBody} collects it into one Buffer after refusing a
 * declared `Content-Length` over the cap before a byte is read. Past the cap both stop
 * reading (the stream is paused and left unread: the router's linger discards the rest,
 * never buffering it) and throw the 400 `payload_too_large` error whose `closeConnection`
 * flag makes the router close the connection after the answer. Chunks are zeroed once copied
 * or refused (bodies can carry secrets). A stream that errors or closes mid-body is a 400
 * `body_read_failed` that also closes. An HTTP/1.1 body that has already arrived whole (the
 * common small JSON request) is taken from the stream's buffer at once, under the same cap.
 */
import type { Readable } from 'node:stream';
import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { type ApiError, payloadTooLarge, readFailed } from './errors.js';

/** The parts of a request that the reader uses (any Readable, headers optional). */
type BodySource = Readable & { headers?: IncomingHttpHeaders };

/**
 * The declared `Content-Length`: `undefined` when absent, `null` when unusable (the HTTP
 * parser already refuses malformed values; this is defence in depth).
 */
export function declaredLength(req: BodySource): number | undefined | null {
  const v = req.headers?.['content-length'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^[0-9]{1,16}$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/** True when the declared length rules the body out (unusable, or over `maxBytes`). */
function declaredTooLarge(req: BodySource, maxBytes: number): boolean {
  const declared = declaredLength(req);
  return declared === null || (declared !== undefined && declared > maxBytes);
}

/**
 * The request body as chunks pulled on demand; past `maxBytes` (running count) the iteration
 * throws the 400 `payload_too_large` error. Never uses the stream's own async iterator:
 * leaving that early would destroy the socket, and an error answer could not be sent. The
 * error and close listeners stay on for the whole read, so a failure while the consumer is
 * busy is remembered rather than lost.
 *
 * Chunks come from 'data' events, the stream paused after each one and resumed only when the
 * consumer asks for the next: so every chunk handed on is the buffer the HTTP layer made (a
 * consumer that zeroes it zeroes the only copy), where `read()` on a paused stream returns
 * the buffered chunks merged into a new buffer and leaves the originals unzeroed. Chunks
 * still queued when the read stops (cap, error, consumer gone) are zeroed here.
 */
export async function* cappedChunks(req: BodySource, maxBytes: number): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: ApiError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer): void => {
    queue.push(c);
    req.pause();
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    notify();
  };
  const onError = (): void => {
    failure ??= readFailed();
    notify();
  };
  // 'close' before 'end' means the peer went away mid-body.
  const onClose = (): void => (req.readableEnded ? onEnd() : onError());
  req.pause();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
  req.on('close', onClose);
  try {
    let total = 0;
    for (;;) {
      if (failure !== undefined) throw failure;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        total += chunk.length;
        if (total > maxBytes) {
          chunk.fill(0);
          throw payloadTooLarge();
        }
        yield chunk;
        continue;
      }
      if (ended || req.readableEnded) return;
      // Already destroyed (client gone while the consumer was busy): no event will come again.
      if (req.destroyed) throw readFailed();
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      req.resume();
      await woken;
    }
  } finally {
    req.pause();
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
    for (const c of queue) c.fill(0);
    queue.length = 0;
  }
}

/**
 * The body of an HTTP/1.1 request whose message Node's parser has already received whole
 * (`complete`: the usual small JSON request arrives with its headers), within the cap, read
 * synchronously from the stream's buffer: no generator, listeners or event-loop turns (P1).
 * `undefined` in every other case, which then takes the general reader (HTTP/2 is excluded:
 * its `complete` is also true for an aborted stream).
 */
function takeComplete(req: BodySource, maxBytes: number): Buffer[] | undefined {
  if (!(req instanceof IncomingMessage) || req.complete !== true || req.destroyed || req.readableLength > maxBytes) return undefined;
  const chunks: Buffer[] = [];
  for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) chunks.push(c);
  return chunks;
}

/**
 * Reads the whole body into one Buffer of at most `maxBytes` bytes. A declared
 * `Content-Length` over the cap is refused before anything is read.
 */
export async function readBody(req: BodySource, maxBytes: number): Promise<Buffer> {
  if (declaredTooLarge(req, maxBytes)) {
    req.pause();
    throw payloadTooLarge();
  }
  const ready = takeComplete(req, maxBytes);
  const chunks: Buffer[] = ready ?? [];
  let total = 0;
  for (const c of chunks) total += c.length;
  try {
    if (ready === undefined) {
      for await (const chunk of cappedChunks(req, maxBytes)) {
        chunks.push(chunk);
        total += chunk.length;
      }
    }
    const out = Buffer.alloc(total);
    let offset = 0;
    for (const c of chunks) {
      c.copy(out, offset);
      offset += c.length;
    }
    return out;
  } finally {
    for (const c of chunks) c.fill(0);
  }
}
