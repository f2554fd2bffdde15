/**
 * Test support: a client that sends a request body slowly over a raw socket (TCP or TLS), so a
 * test controls exactly when each byte goes out (slow-body cases SEC-02, FI-08).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface Dripped {
  /** Everything the server wrote (latin1). */
  answer: string;
  /** When the first answer byte arrived (ms after the socket was opened), or -1. */
  answeredAfterMs: number;
  /** Body bytes sent. */
  bytesSent: number;
}

export interface DripOptions {
  /** The request line and headers, ending in the blank line. */
  head: string;
  body: Buffer;
  /** Bytes per tick. */
  step: number;
  everyMs: number;
  /** Reject if the server has not closed the connection by then (default: never). */
  giveUpMs?: number;
}

/**
 * Once `socket` is connected (`readyEvent`: 'connect' or 'secureConnect'), writes `head`, then
 * `step` bytes of `body` every `everyMs` until all are sent. Resolves when the server closes
 * the connection.
 */
export function drip(socket: Socket | TLSSocket, readyEvent: 'connect' | 'secureConnect', o: DripOptions): Promise<Dripped> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let answer = '';
    let answeredAfterMs = -1;
    let sent = 0;
    let ticker: NodeJS.Timeout | undefined;
    const giveUp = o.giveUpMs === undefined ? undefined : setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${o.giveUpMs} ms (answer so far: ${JSON.stringify(answer.slice(0, 80))})`));
    }, o.giveUpMs);
    socket.on(readyEvent, () => {
      socket.write(o.head);
      ticker = setInterval(() => {
        if (sent >= o.body.length || !socket.writable) return;
        const n = Math.min(o.step, o.body.length - sent);
        socket.write(o.body.subarray(sent, sent + n));
        sent += n;
      }, o.everyMs);
    });
    socket.on('data', (d: Buffer) => {
      if (answeredAfterMs < 0) answeredAfterMs = performance.now() - t0;
      answer += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(ticker);
      clearTimeout(giveUp);
      resolve({ answer, answeredAfterMs, bytesSent: sent });
    });
  });
}
