/**
 * Answers to what never reaches the request handler of the mTLS server: a request Node's HTTP
 * parser refuses (`clientError`), an `Expect` header other than `100-continue`
 * (`checkExpectation`) and a `CONNECT` request (`connect`). On a verified connection each gets
 * one HTTP answer, with the API's own error body when the server was given one, and the
 * connection closes; on any other socket nothing is written. Logged at debug only: a peer can
 * send these as often as it likes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../../lib/index.js';

export interface RefusalBodies {
  /** JSON body of the 400 (and 417) answers; default: none. */
  malformedRequestBody?: string;
}

/** Writes a whole answer on `socket` and closes it (nothing else is queued on it). */
function answerRaw(socket: Socket, status: number, text: string, body: string): void {
  const type = body !== '' ? 'Content-Type: application/json\r\n' : '';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroySoon();
}

/** Longest wait for the answer of the request before bytes that broke the framing; then the connection is cut. */
const ANSWER_BEFORE_REFUSAL_MS = 10_000;

export function answerRefusals(server: https.Server, verified: (socket: Socket) => boolean, bodies: RefusalBodies, log: Logger): void {
  const body400 = bodies.malformedRequestBody ?? '';
  /** Sockets already refused: a parser in its error state reports every later chunk again, and only the first report counts. */
  const refused = new WeakSet<Socket>();

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (refused.has(socket)) return;
    refused.add(socket);
    const ok = verified(socket);
    log.debug({ event: ok ? 'http_client_error' : 'tls_client_error', code: err.code ?? 'unknown', remote: socket.remoteAddress }, 'client error');
    if (!ok || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const text = status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    // A request line Node's parser refuses (an unknown method token, bad framing) gets the
    // API's own 400 body when the server was given one, as a route would answer it.
    const body = status === 400 ? body400 : '';
    const pending = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!pending) answerRaw(socket, status, text, body);
    // A request timeout with a request under way: its parser still runs, so nothing may be
    // written beside the handler's answer; the connection is cut.
    else if (!err.code?.startsWith('HPE_')) socket.destroy();
    else if (!pending.headersSent && !pending.req.complete) {
      // The framing broke inside this request's body (a bad chunk size): none of it was taken,
      // so this refusal is its answer, and the connection closes after it.
      const head = { connection: 'close', 'content-length': Buffer.byteLength(body) };
      pending.writeHead(status, body !== '' ? { ...head, 'content-type': 'application/json' } : head).end(body);
    } else {
      // What broke came after a complete request (a body with no length, read as the next
      // request): that request's own answer goes out first (for a while), then this refusal
      // and the close. Nothing more is read meanwhile.
      socket.pause();
      const cut = setTimeout(() => socket.destroy(), ANSWER_BEFORE_REFUSAL_MS).unref();
      pending.once('finish', () => (socket.writable ? answerRaw(socket, status, text, body) : socket.destroy()));
      pending.once('close', () => {
        clearTimeout(cut);
        socket.destroySoon();
      });
    }
  });

  // Node answers an unknown expectation itself (417, empty body, connection kept): ours has the
  // API's body and closes, since the request body, if any, is never read.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    log.debug({ event: 'http_expectation_refused', remote: req.socket.remoteAddress }, 'unsupported Expect header');
    const head = { connection: 'close', 'content-length': Buffer.byteLength(body400) };
    res.writeHead(417, body400 !== '' ? { ...head, 'content-type': 'application/json' } : head);
    res.end(body400);
  });

  // Without a listener Node drops a CONNECT request unanswered.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    log.debug({ event: 'http_connect_refused', remote: socket.remoteAddress }, 'CONNECT refused');
    if (verified(socket) && socket.writable) answerRaw(socket, 400, 'Bad Request', body400);
    else socket.destroy();
  });
}
