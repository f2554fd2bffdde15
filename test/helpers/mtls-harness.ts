/**
 * The in-process mTLS test harness: a test PKI (two trust domains, a server and a client
 * SVID), an mTLS server whose handler records each caller, a raw TLS client that reports
 * exactly what happened on its one connection, and polling helpers for loaded machines.
 */
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import type { KeyObject } from 'node:crypto';
import { createMtlsServer, type MtlsServer, type MtlsServerOptions } from '../../src/spiffe/tls/index.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import { StaticX509Source } from '../../src/spiffe/source.js';
import type { X509Svid } from '../../src/spiffe/svid.js';
import type { X509BundleSet } from '../../src/spiffe/bundle.js';
import { createLogger } from '../../src/lib/log.js';
import { bundleSetOf, createCa, makeSvid, type TestCa, type TestCert } from './pki.js';

export const TD1 = 'td1.test';
export const SERVER_ID = `spiffe://${TD1}/spike/nexus`;
export const CLIENT_ID = `spiffe://${TD1}/spike/pilot/role/superuser`;

export interface MtlsPki {
  ca1: TestCa; // td1 root
  ca2: TestCa; // td2 root
  serverSvid: X509Svid;
  clientSvid: X509Svid;
  both: X509BundleSet; // ca1 + ca2
}

/** Two trust domains' roots, a server and a client SVID from td1, and both bundles. */
export async function createMtlsPki(): Promise<MtlsPki> {
  const ca1 = await createCa(TD1);
  const ca2 = await createCa('td2.test');
  const serverSvid = await makeSvid(ca1, SERVER_ID);
  const clientSvid = await makeSvid(ca1, CLIENT_ID);
  return { ca1, ca2, serverSvid, clientSvid, both: bundleSetOf(ca1, ca2) };
}

/**
 * A stand-in Nexus for SDK tests: an mTLS server on 127.0.0.1 with the Nexus SVID of `ca`'s
 * trust domain, answering through `handler` (listening when this resolves; the caller closes it).
 */
export async function fakeNexus(ca: TestCa, handler: MtlsServerOptions['handler']): Promise<MtlsServer> {
  const server = createMtlsServer({
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${ca.trustDomain.name}/spike/nexus`), bundleSetOf(ca)),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'fake-nexus', level: 'silent' }),
    handler,
  });
  await server.listen();
  return server;
}

/** A logger whose JSON lines are collected for assertions. */
export function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ component: 'tls-test', level: 'debug', destination });
  return {
    logger,
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface Harness {
  server: MtlsServer;
  source: StaticX509Source;
  seen: string[];
  /** Client port of each handled request (a new port = a new connection). */
  remotePorts: number[];
  logs: () => Record<string, unknown>[];
}

export async function startServer(
  svid: X509Svid,
  bundles: X509BundleSet,
  extra: Partial<MtlsServerOptions> = {},
): Promise<Harness> {
  const source = new StaticX509Source(svid, bundles);
  const seen: string[] = [];
  const remotePorts: number[] = [];
  const cap = captureLogger();
  const server = createMtlsServer({
    source,
    host: '127.0.0.1',
    port: 0,
    logger: cap.logger,
    warnIntervalMs: 0,
    handler: (req, res, peer) => {
      if (peer === null) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"err":"access_unauthorized"}');
        return;
      }
      seen.push(peer.toString());
      remotePorts.push(req.socket.remotePort ?? 0);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const out = JSON.stringify({ peer: peer.toString(), isSpiffeId: peer instanceof SpiffeId });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      });
    },
    ...extra,
  });
  await server.listen();
  return { server, source, seen, remotePorts, logs: cap.lines };
}

export function pemKey(k: KeyObject): string {
  // Test-only: client keys for raw tls.connect.
  return k.export({ format: 'pem', type: 'pkcs8' }) as string;
}

export interface RawResult {
  /** HTTP status if a response arrived. */
  status?: number;
  body?: string;
  /** Error code if the connection failed. */
  error?: string;
  reused: boolean;
  session?: Buffer;
  serverSerial?: string;
  protocol?: string | null;
}

/**
 * A raw TLS client: connects, sends one GET (Connection: close), or the raw bytes of
 * `request`, and reports what happened. `cert`/`key` may be omitted (no client certificate).
 */
export function rawRequest(
  port: number,
  o: { cert?: string; key?: string; ca: string[]; session?: Buffer; maxVersion?: tls.SecureVersion; ciphers?: string; request?: string },
): Promise<RawResult> {
  return new Promise((resolve) => {
    const out: RawResult = { reused: false };
    const data: Buffer[] = [];
    let sessionBuf: Buffer | undefined;
    let secure = false;
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      ca: o.ca,
      ...(o.cert ? { cert: o.cert } : {}),
      ...(o.key ? { key: o.key } : {}),
      ...(o.session ? { session: o.session } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      ...(o.ciphers ? { ciphers: o.ciphers } : {}),
      checkServerIdentity: () => undefined,
      rejectUnauthorized: true,
    });
    sock.on('session', (s: Buffer) => { sessionBuf = s; });
    sock.on('secureConnect', () => {
      secure = true;
      out.reused = sock.isSessionReused();
      out.protocol = sock.getProtocol();
      out.serverSerial = sock.getPeerCertificate().serialNumber;
      sock.write(o.request ?? 'GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    });
    sock.on('data', (c: Buffer) => data.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => { out.error ??= e.code ?? e.message; });
    const timer = setTimeout(() => { out.error ??= 'test_timeout'; sock.destroy(); }, 30_000);
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(data).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        out.status = Number(m[1]);
        out.body = text.slice(text.indexOf('\r\n\r\n') + 4);
      } else {
        out.error ??= 'closed_without_response';
      }
      // Node 20 segfaults on getSession() after a failed handshake: only ask after secureConnect.
      out.session = sessionBuf ?? (secure ? sock.getSession() : undefined);
      resolve(out);
    });
  });
}

export function certPem(c: { pem: string }, ...chain: { pem: string }[]): string {
  return [c, ...chain].map((x) => x.pem).join('');
}

/** A hand-built X509Svid (bypassing makeX509Svid's own-SVID rules) for a hostile server. */
export function rawSvid(leaf: TestCert, id: string, chain: TestCert[] = []): X509Svid {
  return {
    id: SpiffeId.parse(id),
    certificates: [leaf.cert, ...chain.map((c) => c.cert)],
    privateKey: leaf.key,
    notAfter: new Date(leaf.cert.validTo),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds (generous deadline: shared, loaded machines). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

/** Polls `cond` until it holds; throws after `ms` (generous: the machine may be loaded). */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
