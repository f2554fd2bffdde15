/**
 * How a response ends and whether its connection stays open.
 *
 * {@link endResponse} sends a whole answer (its head given whole, including `Content-Length`)
 * and zeroes the body once flushed. The connection is closed after the answer when the caller
 * asks for it (an error raised with `closeConnection`), or when the request body has not
 * fully arrived (an early answer: over-size body, refused caller, unknown route, a handler
 * that stopped reading). In the second case the close waits for the bounded
 * read-and-discard linger (linger.ts), so a client that is still sending receives the answer
 * instead of a reset. HTTP/2 (not served today) simply ends the stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { bodyFullyTaken } from './body.js';
import { type LingerLimits, lingerThenClose } from './linger.js';

/** The request types the router serves (HTTP/1.1, or the HTTP/2 compatibility API). */
export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

export function isHttp1(req: Request): boolean {
  return (req.httpVersionMajor ?? 1) < 2;
}

/**
 * Sends the head (`status`, `head`: header names and values in turn, in the order they go out)
 * and `body`, and ends the response; the body buffer is zeroed once flushed, or when the
 * response closes without that (the connection gone). With `close`, or
 * when the request body has not fully arrived, the connection is closed after the answer — in
 * the second case only after the bounded linger. Headers set on the response before (e.g. a
 * `Connection: close` at shutdown) are kept; `head`'s own names replace theirs.
 */
export function endResponse(req: Request, res: Response, status: number, head: string[], body: Buffer, close: boolean, limits: LingerLimits): void {
  const w = res as ServerResponse;
  // The body may hold secrets, and a small one shares Node's buffer pool with longer-lived
  // copies: it is zeroed once flushed, and also when the connection goes away first, where no
  // write callback ever runs: the response closed already (the client left while the handler
  // ran), or it closes, or (HTTP/1.1) the socket closes under an answer still queued behind a
  // pipelined one, which Node never closes.
  const socket = isHttp1(req) ? (req as IncomingMessage).socket : null;
  let wiped = false;
  const wipe = (): void => {
    if (wiped) return;
    wiped = true;
    body.fill(0);
    w.off('close', wipe);
    socket?.off('close', wipe);
  };
  if (w.destroyed || socket?.destroyed === true) {
    wipe();
    return;
  }
  w.once('close', wipe);
  socket?.once('close', wipe);
  if (!isHttp1(req)) {
    w.writeHead(status, head);
    w.end(body, wipe);
    return;
  }
  const incoming = req as IncomingMessage;
  const early = !bodyFullyTaken(incoming) && hasBody(incoming);
  // Node closes the connection itself once a `Connection: close` response has finished.
  if (close || early) head.push('Connection', 'close');
  w.writeHead(status, head);
  if (!early) {
    w.end(body, wipe);
    return;
  }
  // The whole answer goes out now; the response is finished only when the linger is over
  // (finishing it earlier would make Node close the socket on the unread request bytes).
  w.write(body, wipe);
  lingerThenClose(incoming, w, limits);
}

/**
 * Whether the request carries a body at all. The request event fires before Node's parser
 * marks even a body-less request complete, so `complete === false` alone does not mean
 * that request bytes are still to come.
 */
function hasBody(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  return te !== undefined || (cl !== undefined && cl !== '0');
}
