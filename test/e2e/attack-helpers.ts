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
import { type Dripped, drip } from '../helpers/drip.js';

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

export type Trickled = Dripped;

/**
 * A POST over mTLS (JSON unless `contentType` says otherwise) whose body goes out one byte per
 * `everyMs` (a slow-body client, SEC-02, FI-08): the headers declare the full length at once.
 * Resolves once the server closes the connection; rejects if it has not after `giveUpMs`.
 */
export function trickle(o: {
  source: WorkloadX509Source; url: string; serverId: string; path: string; body: string; everyMs: number; giveUpMs: number;
  /** Default `application/json`. */
  contentType?: string;
}): Promise<Trickled> {
  const svid = o.source.getX509Svid();
  const socket = tls.connect({
    host: '127.0.0.1', port: Number(new URL(o.url).port), minVersion: 'TLSv1.3',
    cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
    ca: o.source.bundleSet().allAuthorities().map((c) => c.toString()),
    checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${o.serverId}` ? undefined : new Error('not the expected server')),
  });
  const body = Buffer.from(o.body, 'latin1');
  const head = `POST ${o.path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${o.contentType ?? 'application/json'}\r\nContent-Length: ${body.length}\r\n\r\n`;
  return drip(socket, 'secureConnect', { head, body, step: 1, everyMs: o.everyMs, giveUpMs: o.giveUpMs });
}
