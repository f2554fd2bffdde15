/**
 * Raw HTTP/1.1-over-mTLS requests for the attack e2e tests: Node's own `https` client with an
 * identity's SVID (from the stack's spike-agent), one fresh connection per request, so a test
 * controls exactly how the body is sent (declared `Content-Length` or chunked, any size) and
 * sees exactly what the connection did (answer, reset, broken pipe).
 *
 * The server is verified against the agent's bundle and must present the Nexus (or Keeper)
 * SPIFFE ID; the host name check of ordinary TLS does not apply to SVIDs.
 */
import https from 'node:https';
import tls, { type PeerCertificate } from 'node:tls';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';
import type { Stack } from '../helpers/stack.js';

export interface RawOutcome {
  /** 'answer': a complete response was read; otherwise the error code that ended the try. */
  kind: 'answer' | 'error' | 'timeout';
  status?: number;
  body?: string;
  json?: Record<string, unknown>;
  headers?: Record<string, string | string[] | undefined>;
  /** For `error`: the socket error code (EPIPE, ECONNRESET, …). */
  code?: string;
}

export interface SendOptions {
  path: string;
  body: Buffer;
  /** Send with `Transfer-Encoding: chunked` (no length) instead of `Content-Length`. */
  chunked?: boolean;
  contentType?: string;
  /** Chunk size for chunked sends (default 64 KiB). */
  chunkBytes?: number;
  timeoutMs?: number;
}

export interface RawHttps {
  send(url: string, o: SendOptions): Promise<RawOutcome>;
  close(): void;
}

/** A raw client with `identity`'s SVID; the server must be `serverId`. */
export async function rawHttps(stack: Stack, identity: string, serverId: string): Promise<RawHttps> {
  const source = await WorkloadX509Source.open({ endpoint: stack.socket(identity), timeoutMs: 15_000 });
  const tlsOptions = (): https.RequestOptions => {
    const svid = source.getX509Svid();
    return {
      cert: svidChainPem(svid),
      key: svidPrivateKeyPem(svid),
      ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        cert.subjectaltname === `URI:${serverId}` ? undefined : new Error('server is not the expected SPIFFE ID'),
    };
  };
  return {
    send(url, o) {
      const u = new URL(url);
      return new Promise<RawOutcome>((resolve) => {
        let done = false;
        const finish = (r: RawOutcome): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(r);
        };
        const headers: Record<string, string> = { 'content-type': o.contentType ?? 'application/json' };
        if (o.chunked === true) headers['transfer-encoding'] = 'chunked';
        else headers['content-length'] = String(o.body.length);
        const req = https.request(
          { ...tlsOptions(), host: u.hostname, port: Number(u.port), path: o.path, method: 'POST', agent: false, headers },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const body = Buffer.concat(chunks).toString('utf8');
              let json: Record<string, unknown> | undefined;
              try {
                json = JSON.parse(body) as Record<string, unknown>;
              } catch {
                json = undefined;
              }
              finish({ kind: 'answer', status: res.statusCode ?? 0, body, ...(json ? { json } : {}), headers: res.headers });
            });
            res.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', code: e.code ?? e.message }));
            res.on('aborted', () => finish({ kind: 'error', code: 'aborted' }));
          },
        );
        // An error after the whole answer was read (the server cutting a sender that keeps
        // going) does not undo the answer: `finish` keeps the first outcome.
        req.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', code: e.code ?? e.message }));
        const timer = setTimeout(() => {
          req.destroy();
          finish({ kind: 'timeout' });
        }, o.timeoutMs ?? 60_000);
        if (o.chunked !== true) {
          req.end(o.body);
          return;
        }
        const step = o.chunkBytes ?? 64 * 1024;
        let off = 0;
        const pump = (): void => {
          while (off < o.body.length) {
            if (req.destroyed) return;
            const c = o.body.subarray(off, Math.min(off + step, o.body.length));
            off += c.length;
            if (!req.write(c)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
    },
    close() {
      source.close();
    },
  };
}

export interface Trickled {
  /** Everything the server wrote (latin1). */
  answer: string;
  /** When the first answer byte arrived (ms after connecting), or -1. */
  answeredAfterMs: number;
  bytesSent: number;
}

/**
 * A JSON POST over mTLS whose body goes out one byte per `everyMs` (a slow-body client,
 * SEC-02): the headers declare the full length at once. Resolves once the server closes the
 * connection; rejects if it has not after `giveUpMs`.
 */
export function trickle(o: { source: WorkloadX509Source; url: string; serverId: string; path: string; body: string; everyMs: number; giveUpMs: number }): Promise<Trickled> {
  const svid = o.source.getX509Svid();
  const port = Number(new URL(o.url).port);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let answer = '';
    let answeredAfterMs = -1;
    let sent = 0;
    const socket = tls.connect({
      host: '127.0.0.1', port, minVersion: 'TLSv1.3',
      cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
      ca: o.source.bundleSet().allAuthorities().map((c) => c.toString()),
      checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${o.serverId}` ? undefined : new Error('not the expected server')),
    });
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${o.giveUpMs} ms (answer so far: ${JSON.stringify(answer.slice(0, 80))})`));
    }, o.giveUpMs);
    let drip: NodeJS.Timeout | undefined;
    socket.on('secureConnect', () => {
      socket.write(`POST ${o.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${o.body.length}\r\n\r\n`);
      drip = setInterval(() => {
        if (sent < o.body.length && socket.writable) socket.write(o.body[sent++]!);
      }, o.everyMs);
    });
    socket.on('data', (d: Buffer) => {
      if (answeredAfterMs < 0) answeredAfterMs = performance.now() - t0;
      answer += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve({ answer, answeredAfterMs, bytesSent: sent });
    });
  });
}
