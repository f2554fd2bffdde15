/**
 * A single kept-alive HTTP/1.1-over-TLS connection driven by hand, for attack tests that
 * must control exactly which connection a request travels on (undici would silently open a
 * new one). Requests are sent one at a time; `send` resolves with the parsed answer, or
 * rejects with `ConnectionClosedError` when the server closed the connection first.
 */
import tls from 'node:tls';

export class ConnectionClosedError extends Error {
  constructor() {
    super('the server closed the connection');
    this.name = 'ConnectionClosedError';
  }
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export class RawHttpsConnection {
  readonly socket: tls.TLSSocket;
  #buf = Buffer.alloc(0);
  #closed = false;
  #waiter: (() => void) | undefined;

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#waiter?.();
    });
  }

  /** Opens the connection (no check of the server's identity: the test knows whom it dials). */
  static open(opts: { host: string; port: number; cert: string; key: string; ca: string; localAddress?: string }): Promise<RawHttpsConnection> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ ...opts, minVersion: 'TLSv1.3', rejectUnauthorized: false }, () => resolve(new RawHttpsConnection(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once the server closed the connection (rejects after `timeoutMs`). */
  async waitClosed(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error('the connection was not closed by the server');
      await this.#next(Math.min(200, deadline - Date.now()));
    }
  }

  async send(path: string, body: string, timeoutMs = 30_000): Promise<RawAnswer> {
    if (this.#closed) throw new ConnectionClosedError();
    this.#buf = Buffer.alloc(0);
    this.socket.write(`POST ${path} HTTP/1.1\r\nHost: nexus\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = this.#parse();
      if (answer) return answer;
      if (this.#closed) throw new ConnectionClosedError();
      if (Date.now() > deadline) throw new Error('no answer in time');
      await this.#next(Math.min(200, deadline - Date.now()));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #next(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(() => { this.#waiter = undefined; r(); }, ms);
      this.#waiter = () => { clearTimeout(t); this.#waiter = undefined; r(); };
    });
  }

  #parse(): RawAnswer | undefined {
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]?.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] ?? 0);
    if (this.#buf.length < end + 4 + len) return undefined;
    return { status, headers, body: this.#buf.subarray(end + 4, end + 4 + len) };
  }
}
