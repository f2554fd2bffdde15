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
 * Chunks under SMALL_CHUNK bytes are packed into shared buffers (memory per byte of body stays
 * bounded however the client splits it).
 */
import type { Readable } from 'node:stream';
import { type IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { wipeAndFree } from '../crypto/curve-free.js';
import { type ApiError, bodyTimeout, bodyTooSlow, payloadTooLarge, readFailed } from './errors.js';
import { type BodyPace, PaceWatch } from './body-pace.js';
import { TurnPacedReader } from './turn-reads.js';

/** The parts of a request that the reader uses (any Readable, headers optional). */
type BodySource = Readable & { headers?: IncomingHttpHeaders };

/** How long a body may take: a whole-body deadline (JSON), a minimum pace (streams), or neither. */
export interface BodyTiming {
  /** The whole body must have been read this long (ms) after the read began, else 408 `body_timeout`. */
  timeoutMs?: number;
  /** The body must keep arriving at this pace while the reader waits, else 408 `body_too_slow` (body-pace.ts). */
  pace?: BodyPace;
}

/** How {@link cappedChunks} reads: its {@link BodyTiming}, and how much it may read ahead. */
export interface ChunkReading extends BodyTiming {
  /**
   * Read ahead of the consumer until this many bytes wait in the queue (default 0: one chunk
   * per resume). A stream reply then gets several chunks per turn of the event loop and
   * writes them out together (P5); at most this many bytes (plus one chunk) wait unread.
   */
  readAheadBytes?: number;
}

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
 * Chunks come from 'data' events, the stream paused after each one (or, with
 * `readAheadBytes`, once that many bytes wait) and resumed only when the consumer has taken
 * every queued chunk and asks for the next: so every chunk handed on is the buffer the HTTP
 * layer made (a
 * consumer that zeroes it zeroes the only copy), where `read()` on a paused stream returns
 * the buffered chunks merged into a new buffer and leaves the originals unzeroed. Chunks
 * still queued when the read stops (cap, error, consumer gone) are zeroed here.
 *
 * With `timing.timeoutMs`, a body not fully read that long after the read began throws the 408
 * `body_timeout` error (closes the connection): a client trickling its body is answered at
 * once instead of holding the request until the server's request timeout drops it unanswered.
 * With `timing.pace`, a body arriving more slowly than that while the reader waits for it
 * throws the 408 `body_too_slow` error (closes; FI-08): the same for bodies with no deadline.
 */
export async function* cappedChunks(req: BodySource, maxBytes: number, timing: ChunkReading = {}): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  const readAhead = timing.readAheadBytes ?? 0;
  let queued = 0;
  let ended = false;
  let failure: ApiError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (c: Buffer): void => {
    pace?.arrived(c.length);
    turns?.count(c.length);
    queue.push(c);
    queued += c.length;
    if (queued >= readAhead) req.pause();
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
  const deadline = timing.timeoutMs === undefined ? undefined : setTimeout(() => {
    failure ??= bodyTimeout();
    notify();
  }, timing.timeoutMs);
  const pace = timing.pace === undefined ? undefined : new PaceWatch(timing.pace, () => {
    failure ??= bodyTooSlow();
    notify();
  });
  const turns = readAhead === 0 ? new TurnPacedReader() : undefined; // streams: their read-ahead bounds them
  req.pause();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
  req.on('close', onClose);
  const small = new SmallChunks();
  try {
    let total = 0;
    for (;;) {
      if (failure !== undefined) throw failure;
      const chunk = queue.shift();
      if (chunk !== undefined) {
        queued -= chunk.length;
        total += chunk.length;
        if (total > maxBytes) {
          chunk.fill(0);
          throw payloadTooLarge();
        }
        if (chunk.length < SMALL_CHUNK) {
          const full = small.add(chunk);
          if (full !== undefined) yield full;
          continue;
        }
        const before = small.flush();
        if (before !== undefined) yield before;
        yield chunk;
        continue;
      }
      if (ended || req.readableEnded) {
        const rest = small.flush();
        if (rest !== undefined) yield rest;
        return;
      }
      // Already destroyed (client gone while the consumer was busy): no event will come again.
      if (req.destroyed) throw readFailed();
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      pace?.waiting();
      if (turns === undefined) req.resume();
      else turns.resume(req, () => wake !== undefined); // a share of each turn (turn-reads.ts, FI-12)
      await woken;
    }
  } finally {
    clearTimeout(deadline);
    pace?.stop();
    req.pause();
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
    for (const c of queue) wipeAndFree(c);
    queue.length = 0;
    small.clear();
    // Stopped early (cap, consumer gone) on a request that has fully arrived: the rest is in
    // the stream's buffer already (the router's linger only drains requests still arriving),
    // so drain it here and zero it. Bounded: nothing more will come.
    if ((req as { complete?: unknown }).complete === true && !req.readableEnded && !req.destroyed) {
      req.on('data', (c: Buffer) => c.fill(0));
      req.resume();
    }
  }
}

/**
 * Below this size a chunk is copied into a shared buffer (and zeroed at once) instead of being
 * handed on: every Buffer costs a few hundred bytes of bookkeeping whatever its length, so a
 * body sent as one-byte chunks (`Transfer-Encoding: chunked`, `1\r\nX\r\n` …) would otherwise
 * hold ~400 bytes of memory per byte of body: a 1 MiB JSON body ~400 MiB, a stream decrypt
 * (which holds its chunks until the tag is checked) far more.
 */
export const SMALL_CHUNK = 1024;
/**
 * Small chunks are handed on in buffers of this size (the last one may be shorter), so up to
 * this many bytes that arrived may wait in the pack for more before the consumer sees them.
 */
export const PACKED_CHUNK_BYTES = 16 * 1024;

/** Packs small chunks into {@link PACKED_CHUNK_BYTES}-byte buffers, zeroing each original once copied. */
class SmallChunks {
  #buf: Buffer | undefined;
  #len = 0;

  /** Copies `c` in; returns a full buffer to hand on when one filled up. */
  add(c: Buffer): Buffer | undefined {
    let out: Buffer | undefined;
    if (this.#buf !== undefined && this.#len + c.length > PACKED_CHUNK_BYTES) out = this.flush();
    this.#buf ??= Buffer.allocUnsafeSlow(PACKED_CHUNK_BYTES);
    c.copy(this.#buf, this.#len);
    this.#len += c.length;
    c.fill(0);
    if (this.#len === PACKED_CHUNK_BYTES) return out ?? this.flush();
    return out;
  }

  /** What is packed so far (a whole buffer when full, else an exact-size copy), or undefined. */
  flush(): Buffer | undefined {
    const buf = this.#buf;
    if (buf === undefined || this.#len === 0) return undefined;
    const len = this.#len;
    this.#buf = undefined;
    this.#len = 0;
    if (len === PACKED_CHUNK_BYTES) return buf;
    const exact = Buffer.from(buf.subarray(0, len));
    // Only what was copied in: the rest was never written (zeroing it touched 16 KiB of fresh
    // memory per small body, page faults included: ~4 µs a request, ~25 µs while the heap grows).
    buf.fill(0, 0, len);
    return exact;
  }

  /** Zeroes anything packed and not handed on. */
  clear(): void {
    this.#buf?.fill(0, 0, this.#len);
    this.#buf = undefined;
    this.#len = 0;
  }
}

/** Requests whose whole body {@link readBody} took before Node's parser marked them complete. */
const takenWhole = new WeakSet<IncomingMessage>();

/**
 * True once {@link readBody} has taken every byte of this HTTP/1.1 request's body, even if
 * Node's parser has not marked the message complete yet (it does so a turn of the event loop
 * later): an answer is then not an early one, no request byte is left to come.
 */
export function bodyFullyTaken(req: IncomingMessage): boolean {
  return req.complete || takenWhole.has(req);
}

/** The body's length when it is framed by `Content-Length` alone (no `Transfer-Encoding`) and not empty. */
function framedLength(req: IncomingMessage): number | undefined {
  if (req.headers['transfer-encoding'] !== undefined) return undefined;
  const n = declaredLength(req);
  return typeof n === 'number' && n > 0 ? n : undefined;
}

/** An HTTP/1.1 body framed by a `Content-Length` within the cap, not all of it buffered yet. */
function mayArriveWhole(req: BodySource, maxBytes: number): boolean {
  if (!(req instanceof IncomingMessage) || req.destroyed) return false;
  const n = framedLength(req);
  return n !== undefined && n <= maxBytes && req.readableLength < n;
}

/**
 * Whether every byte of the body is in the stream's buffer: the message is `complete`, or it
 * is framed by `Content-Length` (no `Transfer-Encoding`) and exactly that many bytes wait
 * unread. Node's parser pushes body bytes as they arrive but marks the message complete only
 * a turn of the event loop later, so for the usual small JSON request, which arrives with its
 * headers, `complete` alone would send every request down the general reader. The framing
 * allows no further body bytes once the declared length is there.
 */
function arrivedWhole(req: IncomingMessage): boolean {
  return req.complete || (framedLength(req) ?? -1) === req.readableLength;
}

/**
 * The body of an HTTP/1.1 request that has arrived whole ({@link arrivedWhole}), within the
 * cap, read synchronously from the stream's buffer: no generator, listeners, timer or
 * event-loop turns (P1). `undefined` in every other case, which then takes the general reader
 * (HTTP/2 is excluded: its `complete` is also true for an aborted stream).
 */
function takeComplete(req: BodySource, maxBytes: number): Buffer[] | undefined {
  if (!(req instanceof IncomingMessage) || req.destroyed || req.readableLength > maxBytes || !arrivedWhole(req)) return undefined;
  const complete = req.complete;
  const chunks: Buffer[] = [];
  // Flowing, `read()` hands out the buffered chunks themselves, one by one; paused, it would
  // merge them into a new buffer and the originals (the only copies readBody can zero) would
  // stay as they were. Paused again before the flow scheduled by resume() runs.
  req.resume();
  try {
    for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) chunks.push(c);
  } finally {
    req.pause();
  }
  if (!complete) {
    // The end of the message is still to be parsed: the stream flows into a listener that
    // zeroes anything (by the framing, nothing) so that it ends and closes as usual.
    takenWhole.add(req);
    req.on('data', (c: Buffer) => c.fill(0));
    req.resume();
  }
  return chunks;
}

/**
 * Reads the whole body into one Buffer of at most `maxBytes` bytes. A declared
 * `Content-Length` over the cap is refused before anything is read; one that arrives too
 * late or too slowly (`timing`) is refused with 408 ({@link cappedChunks}).
 */
export async function readBody(req: BodySource, maxBytes: number, timing: BodyTiming = {}): Promise<Buffer> {
  if (declaredTooLarge(req, maxBytes)) {
    req.pause();
    throw payloadTooLarge();
  }
  // Called from the request event, before Node's parser has handed over the body bytes that
  // came in the same read as the headers: one microtask later they are in the stream's buffer.
  let ready = takeComplete(req, maxBytes);
  if (ready === undefined && mayArriveWhole(req, maxBytes)) {
    await undefined;
    ready = takeComplete(req, maxBytes);
  }
  const chunks: Buffer[] = ready ?? [];
  let total = 0;
  for (const c of chunks) total += c.length;
  try {
    if (ready === undefined) {
      for await (const chunk of cappedChunks(req, maxBytes, timing)) {
        chunks.push(chunk);
        total += chunk.length;
      }
    }
    // Every byte is copied over; a small body comes from Node's shared pool (zeroed after parsing).
    const out = Buffer.allocUnsafe(total);
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
