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
 * Clients that do not pipeline never wait. Pipelined requests waiting here hold their parsed
 * heads (and whatever body bytes arrived) in memory, so past {@link MAX_WAITING} the socket is
 * no longer read until the queue is half empty.
 */
import type { ServerResponse } from 'node:http';

/** Pipelined requests that may wait on one connection before its socket is paused. */
export const MAX_WAITING = 32;

/** The parts of the connection's socket the queue uses. */
interface Flow {
  readonly destroyed: boolean;
  /** Node ends the socket's writable side once an answer that closes the connection is out. */
  readonly writableEnded: boolean;
  pause(): unknown;
  resume(): unknown;
}

/** Whether this answer makes Node close the connection once it is out. */
function endsConnection(res: ServerResponse, socket: Flow): boolean {
  if (socket.destroyed || socket.writableEnded || res.shouldKeepAlive === false) return true;
  const c = res.getHeader('connection');
  return typeof c === 'string' && c.toLowerCase().split(',').some((t) => t.trim() === 'close');
}

export class ConnectionRequests {
  readonly #socket: Flow;
  #active = false;
  #ended = false;
  #paused = false;
  readonly #waiting: Array<() => void> = [];

  constructor(socket: Flow) {
    this.#socket = socket;
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
    if (this.#ended) return;
    if (!this.#active && this.#waiting.length === 0) {
      this.#active = true;
      dispatch();
      return;
    }
    this.#waiting.push(dispatch);
    if (this.#waiting.length >= MAX_WAITING && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  /** The answer of the request being handled has closed (`res`'s `'close'`). */
  finished(res: ServerResponse): void {
    this.#active = false;
    if (this.#ended || endsConnection(res, this.#socket)) {
      this.#ended = true;
      this.#waiting.length = 0;
      return;
    }
    const next = this.#waiting.shift();
    if (this.#paused && this.#waiting.length <= MAX_WAITING / 2) {
      this.#paused = false;
      this.#socket.resume();
    }
    if (next !== undefined) {
      this.#active = true;
      next();
    }
  }
}
