/**
 * HTTP/1.1 requests on one connection are handled one at a time, in the order they came.
 *
 * A client may pipeline: send its next requests before the first answer arrives. Node's HTTP
 * server parses them and emits each at once, answering in order but running the handlers side
 * by side; every SPIKE call is a POST, and RFC 9112 (§9.3.2) allows parallel processing only
 * for safe methods. Run side by side, a pipelined write and the read or delete after it could
 * take effect in either order (a read answered with the value before the write it followed),
 * and a request behind an answer that closes the connection (an oversized body, a lapsed
 * identity) was run although its answer could never be sent: a write applied that its client
 * will take as failed. Here a request waits until the answer before it has closed; a request
 * behind an answer that ends the connection is never run (the client sees the connection
 * close without an answer, as for any request the server did not take).
 *
 * Clients that do not pipeline never wait. Pipelined requests waiting here are already parsed
 * and held in memory, and while they wait nothing is written, so Node's own guard against a
 * pipelining flood (it stops reading once answers pile up unread) never trips; pausing the
 * socket does not hold either (Node resumes it after every request it parses). So a connection
 * that gets {@link MAX_WAITING} requests ahead of its answers is closed: no request behind the
 * one being handled runs, and the client sees the connection close without their answers.
 */
import type { ServerResponse } from 'node:http';

/** Pipelined requests that may wait on one connection; one more closes it (SPIKE's clients never pipeline). */
export const MAX_WAITING = 8;

/**
 * What one request head may hold (the server's `maxHeaderSize`, `maxHeadersCount`): SPIKE's
 * clients send a few short headers, and every waiting request holds its parsed head. With
 * Node's defaults (16 KiB, 2,000 fields) a head could take ~90 KiB of heap, ~3 MiB per
 * connection of waiting requests. Node drops fields past the count, so a head that reaches it
 * is answered 431 instead of being read without them.
 */
export const HEAD_LIMITS = Object.freeze({ maxHeaderBytes: 8 * 1024, maxHeaderFields: 64 });

/** The parts of the connection's socket the queue uses. */
interface Flow {
  readonly destroyed: boolean;
  /** Node ends the socket's writable side once an answer that closes the connection is out. */
  readonly writableEnded: boolean;
  destroy(): unknown;
}

/** Whether this answer makes Node close the connection once it is out. */
function endsConnection(res: ServerResponse, socket: Flow): boolean {
  if (socket.destroyed || socket.writableEnded || res.shouldKeepAlive === false) return true;
  const c = res.getHeader('connection');
  return typeof c === 'string' && c.toLowerCase().split(',').some((t) => t.trim() === 'close');
}

export class ConnectionRequests {
  readonly #socket: Flow;
  readonly #onOverflow: (() => void) | undefined;
  #active = false;
  #ended = false;
  readonly #waiting: Array<() => void> = [];

  /** `onOverflow`: told when the connection is closed for {@link MAX_WAITING} (a warning). */
  constructor(socket: Flow, onOverflow?: () => void) {
    this.#socket = socket;
    this.#onOverflow = onOverflow;
  }

  /** Requests waiting for an earlier answer. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Runs `dispatch` now when no earlier request on the connection is unanswered, else once
   * the earlier answers have closed; never after an answer that ended the connection.
   * `dispatch` must make {@link finished} be called when its answer closes.
   */
  submit(dispatch: () => void): void {
    if (this.#ended || this.#socket.destroyed || this.#socket.writableEnded) return;
    if (!this.#active && this.#waiting.length === 0) {
      this.#active = true;
      dispatch();
      return;
    }
    if (this.#waiting.length >= MAX_WAITING) {
      this.#end();
      this.#socket.destroy();
      this.#onOverflow?.();
      return;
    }
    this.#waiting.push(dispatch);
  }

  #end(): void {
    this.#ended = true;
    this.#waiting.length = 0;
  }

  /** The answer of the request being handled has closed (`res`'s `'close'`). */
  finished(res: ServerResponse): void {
    this.#active = false;
    if (this.#ended || endsConnection(res, this.#socket)) {
      this.#end();
      return;
    }
    const next = this.#waiting.shift();
    if (next !== undefined) {
      this.#active = true;
      next();
    }
  }
}
