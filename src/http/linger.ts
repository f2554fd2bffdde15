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
 * ({@link LingerLimits.maxMs}), whichever comes first; at the bound the connection is cut (a
 * client still sending by then has had the answer for a long while). Reading and discarding
 * costs no memory, and the time bound is shorter than the server's own request timeout, so
 * a lingering connection holds nothing an attacker could not already hold by sending a
 * request body slowly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface LingerLimits {
  /** Most request-body bytes read and discarded after an early answer. */
  readonly maxBytes: number;
  /** Longest time (ms) a connection stays open after an early answer. */
  readonly maxMs: number;
}

/** 4 MiB or 3 s, whichever comes first. */
export const DEFAULT_LINGER: Readonly<LingerLimits> = Object.freeze({ maxBytes: 4 * 1024 * 1024, maxMs: 3_000 });

/** Checks and completes partial limits (start-up error on nonsense). */
export function lingerLimits(o: Partial<LingerLimits> = {}): LingerLimits {
  const l = { ...DEFAULT_LINGER, ...o };
  if (!Number.isSafeInteger(l.maxBytes) || l.maxBytes < 0) throw new RangeError('linger maxBytes must be a non-negative integer');
  if (!Number.isSafeInteger(l.maxMs) || l.maxMs < 1) throw new RangeError('linger maxMs must be a positive integer');
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
  const stop = (cut: boolean): void => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onGone);
    req.off('aborted', onGone);
    req.off('close', onClose);
    if (!cut) {
      // The request has ended: nothing unread remains, so the close is a clean one.
      res.end();
      return;
    }
    req.pause();
    res.end();
    sock.destroy();
  };
  const onData = (chunk: Buffer | string): void => {
    seen += chunk.length;
    if (Buffer.isBuffer(chunk)) chunk.fill(0);
    if (seen > limits.maxBytes) stop(true);
  };
  const onEnd = (): void => stop(false);
  const onGone = (): void => stop(true);
  const onClose = (): void => stop(!req.readableEnded);
  const timer = setTimeout(() => stop(true), limits.maxMs);
  timer.unref();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onGone);
  req.on('aborted', onGone);
  req.on('close', onClose);
  req.resume();
}
