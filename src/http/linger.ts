/**
 * Answering a request whose body has not fully arrived without losing the answer (HTTP/1.1
 * "lingering close").
 *
 * The router often answers before the request body is in: an over-size body (declared or
 * counted), a caller refused on identity before the body is read, an unknown route, a
 * handler that stops reading. Closing the connection right after such an answer loses it:
 * closing a socket with unread request bytes makes the kernel send a reset, and a client
 * that is still writing gets EPIPE/ECONNRESET, often before it has read the answer that was
 * already on its way. So an early answer is sent whole at once (with its `Content-Length` and
 * `Connection: close`, so the client holds the complete answer: connection.ts), then the rest
 * of the request is read and thrown away — every chunk zeroed and dropped, never kept — and
 * once the request has ended the response is finished and the connection closes cleanly.
 *
 * The linger is bounded per connection by bytes ({@link LingerLimits.maxBytes}) and by time
 * ({@link LingerLimits.maxMs}), whichever comes first. At the time bound the connection is
 * cut (a slow sender has had the answer for that long). At the byte bound a fast sender may
 * have written the whole bound in the time its event loop took to read the answer (over
 * loopback, a few milliseconds), so the server stops reading instead — the client's writes
 * block on TCP flow control, no reset is sent, and its event loop is free to read the answer —
 * and cuts only after {@link LingerLimits.cutGraceMs} (and never after the time bound). Reading
 * and discarding costs no memory, the pause costs none either, and the time bound is shorter
 * than the server's own request timeout, so a lingering connection holds nothing an attacker
 * could not already hold by sending a request body slowly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TurnPacedReader } from './turn-reads.js';

export interface LingerLimits {
  /** Most request-body bytes read and discarded after an early answer. */
  readonly maxBytes: number;
  /** Longest time (ms) a connection stays open after an early answer. */
  readonly maxMs: number;
  /** Time (ms) a connection stays open, not read, after the byte bound, before it is cut (never past maxMs). */
  readonly cutGraceMs: number;
}

/** 4 MiB or 3 s, whichever comes first; at the byte bound, 1 s paused before the cut (within the 3 s). */
export const DEFAULT_LINGER: Readonly<LingerLimits> = Object.freeze({ maxBytes: 4 * 1024 * 1024, maxMs: 3_000, cutGraceMs: 1_000 });

/** Checks and completes partial limits (start-up error on nonsense). */
export function lingerLimits(o: Partial<LingerLimits> = {}): LingerLimits {
  const l = { ...DEFAULT_LINGER, ...o };
  if (!Number.isSafeInteger(l.maxBytes) || l.maxBytes < 0) throw new RangeError('linger maxBytes must be a non-negative integer');
  if (!Number.isSafeInteger(l.maxMs) || l.maxMs < 1) throw new RangeError('linger maxMs must be a positive integer');
  if (!Number.isSafeInteger(l.cutGraceMs) || l.cutGraceMs < 0) throw new RangeError('linger cutGraceMs must be a non-negative integer');
  return Object.freeze(l);
}

/** Reads and discards the rest of `req` within `limits`, then finishes `res` (see module doc). */
export function lingerThenClose(req: IncomingMessage, res: ServerResponse, limits: LingerLimits): void {
  const sock = req.socket;
  if (req.destroyed || sock.destroyed) {
    // The client is already gone: nothing to wait for.
    res.end();
    return;
  }
  let seen = 0;
  let over = false;
  let closed = false;
  let grace: NodeJS.Timeout | undefined;
  const detach = (): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onGone);
    req.off('aborted', onGone);
    req.off('close', onClose);
  };
  const finish = (): void => {
    detach();
    // The cut aborts the unfinished request: its error must find a listener, never go uncaught.
    req.on('error', () => undefined);
    res.end();
    sock.destroy();
  };
  const cut = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    clearTimeout(grace);
    sock.off('close', cut);
    if (!req.isPaused()) {
      finish();
      return;
    }
    // Chunks the paused request stream holds flow through `onData` (zeroed) first: resuming
    // emits them on the next tick, each original chunk (a read() would join them into a copy).
    req.resume();
    process.nextTick(finish);
  };
  const stop = (how: 'ended' | 'cut' | 'pause'): void => {
    if (over) return;
    over = true;
    if (how === 'ended') {
      // The request has ended: nothing unread remains, so the close is a clean one.
      closed = true;
      clearTimeout(timer);
      detach();
      res.end();
      return;
    }
    if (how === 'cut' || limits.cutGraceMs === 0) {
      cut();
      return;
    }
    // The byte bound: stop reading (the paused request stream stops the socket's reads once its
    // small buffer is full; flow control holds the sender, no reset yet) and give the client
    // time to read the answer it already has; the cut comes after the grace, never later than
    // the time bound.
    req.pause();
    grace = setTimeout(cut, limits.cutGraceMs);
    grace.unref();
    sock.once('close', cut);
  };
  const onData = (chunk: Buffer | string): void => {
    seen += chunk.length;
    if (Buffer.isBuffer(chunk)) chunk.fill(0);
    if (seen > limits.maxBytes) {
      stop('pause');
      return;
    }
    // A share of each turn of the event loop (turn-reads.ts, FI-12): paused, the socket stops
    // once the request stream's small buffer is full, and reading goes on next turn.
    turns.count(chunk.length);
    if (turns.spent && !over && !closed && !req.isPaused()) {
      req.pause();
      turns.resume(req, () => !over && !closed);
    }
  };
  const turns = new TurnPacedReader();
  const onEnd = (): void => stop('ended');
  const onGone = (): void => stop('cut');
  const onClose = (): void => stop(req.readableEnded ? 'ended' : 'cut');
  const timer = setTimeout(cut, limits.maxMs);
  timer.unref();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onGone);
  req.on('aborted', onGone);
  req.on('close', onClose);
  req.resume();
}
