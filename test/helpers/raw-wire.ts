/**
 * Byte-exact HTTP/1.1-over-mTLS exchanges for the wire golden test: the caller writes the
 * request bytes itself (any method, target, headers, body; even a declared length it never
 * sends), one fresh connection per request, and gets back the status line, the header lines
 * exactly as the server wrote them (name case and order kept) and the body (de-chunked when
 * the answer was chunked). No HTTP client library sits in between, so what is recorded is
 * what the server put on the wire.
 *
 * The client presents `identity`'s SVID from the stack's spike-agent; the server must present
 * `serverId` and chain to the agent's bundle. A server that refuses the client (a Keeper
 * refuses every identity but Nexus and Bootstrap in the handshake) yields `no_answer`.
 */
import tls from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';

export interface WireAnswer {
  kind: 'answer';
  /** e.g. `HTTP/1.1 200 OK` */
  statusLine: string;
  /** Header lines as sent: [name, value], in order. */
  headers: Array<[string, string]>;
  /** The body (chunked transfer decoded). */
  body: Buffer;
}

export interface WireNoAnswer {
  kind: 'no_answer';
  /** Why (socket error code or 'closed'); not deterministic, so not for golden files. */
  detail: string;
}

export type WireOutcome = WireAnswer | WireNoAnswer;

export interface WireRequest {
  method: string;
  target: string;
  /** Header lines other than `Host` and `Content-Length`, e.g. `Content-Type: application/json`. */
  headers: string[];
  body: Buffer;
  /** Send `Transfer-Encoding: chunked` (the body as one chunk) instead of `Content-Length`. */
  chunked?: boolean;
  /** Declare this `Content-Length` but send no body (an over-cap declaration). */
  declaredLengthOnly?: number;
}

/** The exact bytes of `r` on the wire. */
export function requestBytes(r: WireRequest): Buffer {
  const lines = [`${r.method} ${r.target} HTTP/1.1`, 'Host: localhost', ...r.headers];
  if (r.declaredLengthOnly !== undefined) {
    lines.push(`Content-Length: ${r.declaredLengthOnly}`);
    return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  }
  if (r.chunked === true) {
    lines.push('Transfer-Encoding: chunked');
    const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
    const chunk = r.body.length > 0 ? [Buffer.from(`${r.body.length.toString(16)}\r\n`), r.body, Buffer.from('\r\n')] : [];
    return Buffer.concat([head, ...chunk, Buffer.from('0\r\n\r\n')]);
  }
  lines.push(`Content-Length: ${r.body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), r.body]);
}

/** Decodes a complete chunked body starting at `buf[0]`; undefined while incomplete. */
function dechunk(buf: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', off);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(off, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isInteger(size) || size < 0) throw new Error('malformed chunked answer');
    // The last chunk: complete once the (possibly empty) trailer section ends with CRLF CRLF.
    if (size === 0) return buf.indexOf('\r\n\r\n', eol) >= 0 ? Buffer.concat(parts) : undefined;
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** Parses one answer from `buf`; undefined while incomplete (`ended`: the peer closed). */
function parseAnswer(buf: Buffer, ended: boolean): WireAnswer | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  const find = (name: string): string | undefined => headers.find(([n]) => n.toLowerCase() === name)?.[1];
  const rest = buf.subarray(end + 4);
  const answer = (body: Buffer): WireAnswer => ({ kind: 'answer', statusLine: lines[0]!, headers, body: Buffer.from(body) });
  if (find('transfer-encoding')?.toLowerCase() === 'chunked') {
    const body = dechunk(rest);
    return body === undefined ? undefined : answer(body);
  }
  const length = find('content-length');
  if (length !== undefined) return rest.length >= Number(length) ? answer(rest.subarray(0, Number(length))) : undefined;
  return ended ? answer(rest) : undefined;
}

/** mTLS raw exchanges with one SVID source per identity (opened on first use). */
export class RawWire {
  readonly #sources = new Map<string, WorkloadX509Source>();

  constructor(private readonly socketOf: (identity: string) => string) {}

  async #source(identity: string): Promise<WorkloadX509Source> {
    let s = this.#sources.get(identity);
    if (s === undefined) {
      s = await WorkloadX509Source.open({ endpoint: this.socketOf(identity), timeoutMs: 15_000 });
      this.#sources.set(identity, s);
    }
    return s;
  }

  /** Sends `bytes` to `port` as `identity`; resolves with the first complete answer. */
  async exchange(o: { port: number; identity: string; serverId: string; bytes: Buffer; timeoutMs?: number }): Promise<WireOutcome> {
    const source = await this.#source(o.identity);
    const svid = source.getX509Svid();
    return new Promise<WireOutcome>((resolve) => {
      let buf = Buffer.alloc(0);
      let settled = false;
      const socket = tls.connect({
        host: '127.0.0.1',
        port: o.port,
        cert: svidChainPem(svid),
        key: svidPrivateKeyPem(svid),
        ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
        minVersion: 'TLSv1.3',
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          cert.subjectaltname === `URI:${o.serverId}` ? undefined : new Error('server is not the expected SPIFFE ID'),
      });
      const finish = (outcome: WireOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(outcome);
      };
      const timer = setTimeout(() => finish({ kind: 'no_answer', detail: 'timeout' }), o.timeoutMs ?? 30_000);
      socket.once('secureConnect', () => socket.write(o.bytes));
      socket.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        try {
          const a = parseAnswer(buf, false);
          if (a) finish(a);
        } catch (e) {
          finish({ kind: 'no_answer', detail: (e as Error).message });
        }
      });
      socket.on('error', (e: NodeJS.ErrnoException) => {
        const a = buf.length > 0 ? parseAnswer(buf, true) : undefined;
        finish(a ?? { kind: 'no_answer', detail: e.code ?? e.message });
      });
      socket.on('close', () => {
        const a = buf.length > 0 ? parseAnswer(buf, true) : undefined;
        finish(a ?? { kind: 'no_answer', detail: 'closed' });
      });
    });
  }

  close(): void {
    for (const s of this.#sources.values()) s.close();
    this.#sources.clear();
  }
}
