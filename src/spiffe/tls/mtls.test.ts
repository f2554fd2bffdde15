/**
 * mTLS server and client factories: SVID rules at the transport (catalogue TLS-01…TLS-24),
 * rotation, no session resumption, client-side server authorization, malformed input.
 * In-process with StaticX509Source and the test PKI; the real-process version is
 * test/e2e/mtls.test.ts.
 */
import 'reflect-metadata';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import https from 'node:https';
import { Readable, Writable } from 'node:stream';
import { webcrypto, KeyObject, X509Certificate } from 'node:crypto';
import * as px from '@peculiar/x509';
import { request } from 'undici';
import {
  createMtlsServer,
  createMtlsDispatcher,
  peerChainDer,
  PeerRejectedError,
  type MtlsServer,
  type MtlsServerOptions,
} from './dialer.js';
import { SpiffeId, TrustDomain } from '../id.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny, authorizeId, authorizeMemberOf } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import { X509BundleSet } from '../bundle.js';
import { createLogger } from '../../lib/log.js';
import {
  bundleSetOf,
  createCa,
  createIntermediate,
  issueLeaf,
  KeyUsage,
  makeSvid,
  type TestCa,
  type TestCert,
} from '../../../test/helpers/pki.js';

const TD1 = 'td1.test';
const SERVER_ID = `spiffe://${TD1}/spike/nexus`;
const CLIENT_ID = `spiffe://${TD1}/spike/pilot/role/superuser`;

// ---------------------------------------------------------------------------------------------
// helpers

/** A logger whose JSON lines are collected for assertions. */
function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
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

interface Harness {
  server: MtlsServer;
  source: StaticX509Source;
  seen: string[];
  /** Client port of each handled request (a new port = a new connection). */
  remotePorts: number[];
  logs: () => Record<string, unknown>[];
}

async function startServer(
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

function pemKey(k: KeyObject): string {
  // Test-only: client keys for raw tls.connect.
  return k.export({ format: 'pem', type: 'pkcs8' }) as string;
}

interface RawResult {
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
 * A raw TLS client: connects, sends one GET (Connection: close) and reports what happened.
 * `cert`/`key` may be omitted (no client certificate).
 */
function rawRequest(
  port: number,
  o: { cert?: string; key?: string; ca: string[]; session?: Buffer; maxVersion?: tls.SecureVersion; ciphers?: string },
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
      sock.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
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

function certPem(c: { pem: string }, ...chain: { pem: string }[]): string {
  return [c, ...chain].map((x) => x.pem).join('');
}

/** A hand-built X509Svid (bypassing makeX509Svid's own-SVID rules) for a hostile server. */
function rawSvid(leaf: TestCert, id: string, chain: TestCert[] = []): X509Svid {
  return {
    id: SpiffeId.parse(id),
    certificates: [leaf.cert, ...chain.map((c) => c.cert)],
    privateKey: leaf.key,
    notAfter: new Date(leaf.cert.validTo),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds (generous deadline: shared, loaded machines). */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

/** Polls `cond` until it holds; throws after `ms` (generous: the machine may be loaded). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------

let ca1: TestCa; // td1 root
let ca2: TestCa; // td2 root
let serverSvid: X509Svid;
let clientSvid: X509Svid;
let both: X509BundleSet; // ca1 + ca2

before(async () => {
  ca1 = await createCa(TD1);
  ca2 = await createCa('td2.test');
  serverSvid = await makeSvid(ca1, SERVER_ID);
  clientSvid = await makeSvid(ca1, CLIENT_ID);
  both = bundleSetOf(ca1, ca2);
});

describe('mTLS server and client', () => {
  let h: Harness;
  before(async () => { h = await startServer(serverSvid, both); });
  after(async () => { await h.server.close(); });

  test('request over mTLS: the handler receives the client SPIFFE ID as a SpiffeId', async () => {
    const source = new StaticX509Source(clientSvid, both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    try {
      const res = await request(`https://127.0.0.1:${h.server.port}/x`, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(await res.body.json(), { peer: CLIENT_ID, isSpiffeId: true });
      assert.ok(h.seen.includes(CLIENT_ID));
    } finally {
      await dispatcher.close();
    }
  });

  test('keep-alive: many requests share few connections', async () => {
    const source = new StaticX509Source(clientSvid, both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny(), connections: 2 });
    let maxOpen = 0;
    const before = h.seen.length;
    try {
      for (let i = 0; i < 50; i++) {
        const res = await request(`https://127.0.0.1:${h.server.port}/k`, { dispatcher });
        assert.equal(res.statusCode, 200);
        await res.body.dump();
        maxOpen = Math.max(maxOpen, h.server.connections());
      }
      assert.equal(h.seen.length - before, 50);
      assert.ok(maxOpen <= 2, `never more than the 2 pooled connections open (saw ${maxOpen})`);
      assert.ok(h.server.connections() >= 1 && h.server.connections() <= 2);
    } finally {
      await dispatcher.close();
    }
  });

  test('TLS-01: no client certificate is refused at the handshake; no handler runs', async () => {
    const before = h.seen.length;
    const r = await rawRequest(h.server.port, { ca: [ca1.pem] });
    assert.equal(r.status, undefined);
    assert.ok(r.error, 'the connection failed');
    assert.equal(h.seen.length, before);
  });

  test('TLS-02: self-signed leaf with a plausible superuser ID is refused at the handshake', async () => {
    const leaf = await issueLeaf(undefined, { uris: [CLIENT_ID], selfSigned: true });
    const before = h.seen.length;
    const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) });
    assert.equal(r.status, undefined);
    assert.match(r.error ?? '', /ALERT|ECONNRESET|closed/);
    assert.equal(h.seen.length, before);
  });

  test('TLS-20: a TLS 1.2 client hello is refused (TLS 1.3 only; TLS-24: no renegotiation possible)', async () => {
    const leaf = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    const before = h.seen.length;
    const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key), maxVersion: 'TLSv1.2' });
    assert.equal(r.status, undefined);
    assert.match(r.error ?? '', /PROTOCOL_VERSION|VERSION/);
    assert.equal(h.seen.length, before);
    // Control: the same certificate over TLS 1.3 works.
    const ok = await rawRequest(h.server.port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) });
    assert.equal(ok.status, 200);
    assert.equal(ok.protocol, 'TLSv1.3');
  });

  test('a handler that throws gets a 500 and the server keeps serving', async () => {
    const bad = await startServer(serverSvid, both, {
      handler: () => { throw new Error('boom'); },
    });
    const asyncBad = await startServer(serverSvid, both, {
      handler: async () => { await sleep(1); throw new Error('boom'); },
    });
    const source = new StaticX509Source(clientSvid, both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny() });
    try {
      for (const s of [bad, asyncBad]) {
        for (let i = 0; i < 2; i++) {
          const res = await request(`https://127.0.0.1:${s.server.port}/`, { dispatcher });
          assert.equal(res.statusCode, 500);
          assert.deepEqual(await res.body.json(), { err: 'internal_error' });
        }
      }
    } finally {
      await dispatcher.close();
      await bad.server.close();
      await asyncBad.server.close();
    }
  });
});

describe('SVID rules at the server (SVID-reject: the socket is closed before any handler runs)', () => {
  let h: Harness;
  let inter: TestCa;
  before(async () => {
    h = await startServer(serverSvid, both);
    inter = await createIntermediate(ca1);
  });
  after(async () => { await h.server.close(); });

  const KU_DEFAULT = KeyUsage.digitalSignature | KeyUsage.keyEncipherment;
  const cases: { id: string; title: string; make: () => Promise<{ leaf: TestCert; chain?: TestCert[] }> }[] = [
    {
      id: 'TLS-04',
      title: "cross-domain forgery: td2's CA issues a leaf claiming a td1 ID while both CAs are trusted",
      make: async () => ({ leaf: await issueLeaf(ca2, { uris: [CLIENT_ID] }) }),
    },
    { id: 'TLS-05', title: 'expired leaf', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }) }) },
    { id: 'TLS-06', title: 'leaf valid only from now + 10 min', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], notBefore: new Date(Date.now() + 600_000) }) }) },
    {
      id: 'TLS-07',
      title: 'valid leaf under an expired intermediate',
      make: async () => {
        const old = await createIntermediate(ca1, { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 60_000) });
        return { leaf: await issueLeaf(old, { uris: [CLIENT_ID], notBefore: new Date(Date.now() - 3600_000) }), chain: [...old.chain] };
      },
    },
    { id: 'TLS-08', title: 'CA:TRUE leaf signed by a trusted CA', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], isCA: true, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign }) }) },
    { id: 'TLS-09', title: 'CA:FALSE leaf with keyCertSign', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], keyUsages: KU_DEFAULT | KeyUsage.keyCertSign }) }) },
    { id: 'TLS-09', title: 'CA:FALSE leaf with cRLSign', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], keyUsages: KU_DEFAULT | KeyUsage.cRLSign }) }) },
    { id: 'TLS-10', title: 'leaf whose key usage lacks digitalSignature', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [CLIENT_ID], keyUsages: KeyUsage.keyEncipherment }) }) },
    { id: 'TLS-11', title: 'leaf with two URI SANs (workload + superuser)', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`spiffe://${TD1}/workload`, CLIENT_ID] }) }) },
    { id: 'TLS-12', title: 'leaf with no URI SAN (DNS name only)', make: async () => ({ leaf: await issueLeaf(ca1, { dnsNames: ['pilot.td1.test'] }) }) },
    { id: 'TLS-13', title: 'non-SPIFFE URI https://…', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`https://${TD1}/spike/nexus`] }) }) },
    { id: 'TLS-13', title: 'upper-case scheme SPIFFE://…', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`SPIFFE://${TD1}/spike/nexus`] }) }) },
    { id: 'TLS-14', title: 'malformed ID: dot-dot segment', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`spiffe://${TD1}/a/../spike/nexus`] }) }) },
    { id: 'TLS-14', title: 'malformed ID: bare trust domain on a workload leaf', make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`spiffe://${TD1}`] }) }) },
    {
      id: 'TLS-15',
      title: 'SAN string injection: one URI SAN containing ", URI:spiffe://…superuser"',
      make: async () => ({ leaf: await issueLeaf(ca1, { uris: [`spiffe://${TD1}/evil, URI:${CLIENT_ID}`] }) }),
    },
    {
      id: 'TLS-17',
      title: 'an "intermediate" with CA:FALSE between leaf and root',
      make: async () => {
        const notCa = await createIntermediate(ca1, { isCA: false, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
        return { leaf: await issueLeaf(notCa, { uris: [CLIENT_ID] }), chain: [...notCa.chain] };
      },
    },
  ];

  for (const c of cases) {
    test(`${c.id}: ${c.title} is refused; no handler runs`, async () => {
      const { leaf, chain = [] } = await c.make();
      const before = h.seen.length;
      const logsBefore = h.logs().length;
      const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: certPem(leaf, ...chain), key: pemKey(leaf.key) });
      assert.equal(r.status, undefined, 'no HTTP response');
      assert.ok(r.error);
      assert.equal(h.seen.length, before, 'no handler ran');
      const rejected = (): Record<string, unknown>[] => h.logs().slice(logsBefore).filter((l) => l['event'] === 'tls_peer_rejected' || l['event'] === 'tls_client_error');
      await until(() => rejected().length >= 1, 30_000, 'the rejection to be logged');
      const text = JSON.stringify(h.logs());
      assert.ok(!text.includes(leaf.pem.split('\n')[1] as string), 'no certificate in logs');
      assert.ok(!text.includes('superuser'), 'unverified IDs are not logged');
    });
  }

  test('TLS-04: OpenSSL alone accepts the cross-domain forgery; the SVID check is what refuses it', async () => {
    // Control showing the test can fail: a plain Node server with the same flat CA list says authorized.
    const leaf = await issueLeaf(ca2, { uris: [CLIENT_ID] });
    const srvLeaf = await issueLeaf(ca1, { uris: [SERVER_ID] });
    let authorized: boolean | undefined;
    const plain = https.createServer({ cert: srvLeaf.pem, key: pemKey(srvLeaf.key), ca: [ca1.pem, ca2.pem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (req, res) => {
      authorized = (req.socket as tls.TLSSocket).authorized;
      res.end('ok');
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const port = (plain.address() as net.AddressInfo).port;
      const r = await rawRequest(port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) });
      assert.equal(r.status, 200);
      assert.equal(authorized, true);
      const logsBefore = h.logs().length;
      const ours = await rawRequest(h.server.port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) });
      assert.equal(ours.status, undefined);
      const reasons = (): unknown[] => h.logs().slice(logsBefore).map((l) => l['reason']);
      await until(() => reasons().includes('svid_untrusted_chain'), 30_000, `reason svid_untrusted_chain (logged: ${JSON.stringify(reasons())})`);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  test('TLS-17: valid leaf through an intermediate works; identity is the leaf\'s even with an unrelated SVID appended', async () => {
    const leaf = await issueLeaf(inter, { uris: [`spiffe://${TD1}/workload/a`] });
    const unrelated = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: certPem(leaf, ...inter.chain, unrelated), key: pemKey(leaf.key) });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body ?? ''), { peer: `spiffe://${TD1}/workload/a`, isSpiffeId: true });
  });

  test('TLS-20: RSA-1024 and SHA-1-signed leaves are refused', async () => {
    const rsa = (await webcrypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true, ['sign', 'verify'],
    )) as unknown as webcrypto.CryptoKeyPair;
    const mk = async (publicKey: webcrypto.CryptoKey, alg: { name: string; hash: string; namedCurve?: string }) => {
      const cert = await px.X509CertificateGenerator.create({
        serialNumber: '0badc0de',
        subject: 'CN=weak',
        issuer: ca1.name,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3600_000),
        signingAlgorithm: alg,
        publicKey,
        signingKey: ca1.keys.privateKey,
        extensions: [
          new px.BasicConstraintsExtension(false, undefined, true),
          new px.KeyUsagesExtension(KeyUsage.digitalSignature | KeyUsage.keyEncipherment, true),
          new px.SubjectAlternativeNameExtension([{ type: 'url', value: CLIENT_ID }]),
        ],
      });
      return cert.toString('pem');
    };
    const rsaPem = await mk(rsa.publicKey, { name: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-256' });
    const rsaKey = pemKey(KeyObject.from(rsa.privateKey));
    const ec = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    const sha1Pem = await mk(ec.keys.publicKey, { name: 'ECDSA', hash: 'SHA-1', namedCurve: 'P-256' });
    assert.match(new X509Certificate(sha1Pem).toString(), /BEGIN CERTIFICATE/);
    const before = h.seen.length;
    for (const [cert, key] of [[rsaPem, rsaKey], [sha1Pem, pemKey(ec.key)]] as const) {
      // The client itself must lower its security level to even load such a certificate.
      const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert, key, ciphers: 'DEFAULT:@SECLEVEL=0' });
      assert.equal(r.status, undefined);
      assert.ok(r.error);
    }
    assert.equal(h.seen.length, before);
  });
});

describe('client side: the server is checked before any request byte is sent', () => {
  test('TLS-21: server with a valid SVID of the wrong identity → PeerRejectedError, no request reaches it, the body is never read', async () => {
    const h = await startServer(await makeSvid(ca1, `spiffe://${TD1}/workload/not-nexus`), both);
    const source = new StaticX509Source(clientSvid, both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    let bodyPulled = false;
    const body = new Readable({
      read() {
        bodyPulled = true;
        this.push('{"shard":"secret"}');
        this.push(null);
      },
    });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/v1/store/secrets`, { dispatcher, method: 'POST', body }),
        (err: unknown) => err instanceof PeerRejectedError && err.code === 'tls_peer_rejected' && err.reason === 'unauthorized',
      );
      assert.equal(bodyPulled, false, 'the request body was never read');
      assert.deepEqual(h.seen, [], 'the server handler never ran');
      assert.ok(!/workload|nexus/.test(new PeerRejectedError('unauthorized').message), 'the error echoes no ID');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('TLS-08 (client side): a server presenting a CA:TRUE leaf is rejected by the client', async () => {
    const leaf = await issueLeaf(ca1, { uris: [SERVER_ID], isCA: true, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
    const h = await startServer(rawSvid(leaf, SERVER_ID), both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/`, { dispatcher }),
        (err: unknown) => err instanceof PeerRejectedError && err.reason === 'svid_leaf_is_ca',
      );
      assert.deepEqual(h.seen, []);
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('TLS-04 (client side): a server leaf from td2 claiming a td1 ID is rejected', async () => {
    const leaf = await issueLeaf(ca2, { uris: [SERVER_ID] });
    const h = await startServer(rawSvid(leaf, SERVER_ID), both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeMemberOf(TrustDomain.parse(TD1)) });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/`, { dispatcher }),
        (err: unknown) => err instanceof PeerRejectedError && err.reason === 'svid_untrusted_chain',
      );
      assert.deepEqual(h.seen, []);
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('no hostname check: the server is identified by SPIFFE ID whatever the URL host', async () => {
    const h = await startServer(serverSvid, both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    try {
      const res = await request(`https://localhost:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });
});

describe('rotation', () => {
  test('TLS-23: keep-alive client through two+ SVID rotations on both sides: zero failed requests; new connections show the new serial', async () => {
    // Short-lived, so rotation is needed; long enough that a starved test process (a loaded
    // machine) still rotates before expiry: the test rotates after traffic, not on a clock.
    const ttl = 30_000;
    const short = (ca: TestCa, id: string): Promise<X509Svid> => makeSvid(ca, id, { notAfter: new Date(Date.now() + ttl) });
    // As in production, the maximum connection age is below the SVID lifetime minus the
    // rotation period, so no connection outlives the client certificate it was made with.
    const h = await startServer(await short(ca1, SERVER_ID), both, { maxConnectionAgeMs: 500 });
    const clientSource = new StaticX509Source(await short(ca1, CLIENT_ID), both);
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)), connections: 2 });
    const serials = new Set<string>();
    const observe = async (): Promise<void> => {
      const c = await issueLeaf(ca1, { uris: [CLIENT_ID] });
      const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: c.pem, key: pemKey(c.key) });
      assert.equal(r.status, 200);
      serials.add(r.serverSerial ?? '');
    };
    let ok = 0;
    let failed = 0;
    let rotations = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const res = await request(`https://127.0.0.1:${h.server.port}/r`, { dispatcher });
          await res.body.dump();
          if (res.statusCode === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    })();
    try {
      await observe();
      while (rotations < 3) {
        // Rotate once some keep-alive requests went through since the last rotation (a count,
        // not a wall-clock window), so every rotation happens under traffic.
        const okBefore = ok;
        await until(() => ok >= okBefore + 10 || failed > 0, 60_000, 'requests between rotations');
        h.source.update(await short(ca1, SERVER_ID), both);
        clientSource.update(await short(ca1, CLIENT_ID), both);
        rotations++;
        await observe();
      }
    } finally {
      stop = true;
      await loop;
      await dispatcher.close();
      await h.server.close();
    }
    assert.equal(rotations, 3);
    assert.equal(failed, 0, 'no failed request');
    assert.ok(ok > 20, `requests sent: ${ok}`);
    assert.equal(serials.size, 4, 'each rotation shows a new server certificate serial on new connections');
  });

  test('client rotation: new connections present the new client SVID; the established one keeps working', async () => {
    const h = await startServer(serverSvid, both);
    const source = new StaticX509Source(await makeSvid(ca1, `spiffe://${TD1}/workload/v1`), both);
    // The idle timeout must outlast the gap between the first two requests even on a loaded
    // machine (the new SVID is made beforehand); expiry itself is waited for, not slept through.
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 2_000 });
    const who = async (): Promise<string> => {
      const res = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      return ((await res.body.json()) as { peer: string }).peer;
    };
    const v2 = await makeSvid(ca1, `spiffe://${TD1}/workload/v2`);
    try {
      assert.equal(await who(), `spiffe://${TD1}/workload/v1`);
      source.update(v2, both);
      assert.equal(await who(), `spiffe://${TD1}/workload/v1`, 'established connection reused');
      await until(() => h.server.connections() === 0, 60_000, 'the idle connection to expire');
      assert.equal(await who(), `spiffe://${TD1}/workload/v2`, 'new connection uses the new SVID');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('FI-17 / server bundle rotation: when a CA leaves the bundle, its established connections are closed and new ones refused', async () => {
    const caOld = await createCa(TD1);
    const h = await startServer(serverSvid, bundleSetOf(ca1, caOld));
    const source = new StaticX509Source(await makeSvid(caOld, CLIENT_ID), bundleSetOf(ca1));
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 10_000 });
    const fresh = createMtlsDispatcher({ source, authorizeServer: authorizeAny() });
    try {
      const r1 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(r1.statusCode, 200);
      await r1.body.dump();
      assert.equal(h.server.connections(), 1);
      h.source.update(serverSvid, bundleSetOf(ca1));
      // The update sweeps at once: the idle connection anchored in caOld is gone.
      await waitFor(() => h.server.connections() === 0, 'connection anchored in the withdrawn CA closed');
      await assert.rejects(async () => {
        const r2 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
        await r2.body.dump();
      });
      await assert.rejects(async () => {
        const r3 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: fresh });
        await r3.body.dump();
      });
      assert.equal(h.seen.length, 1);
      assert.ok(h.logs().some((l) => l['event'] === 'tls_peer_lapsed' && l['reason'] === 'anchor_withdrawn'));
    } finally {
      await dispatcher.close();
      await fresh.close();
      await h.server.close();
    }
  });

  test('a request on a kept-alive connection whose client SVID expired gets 401 and the connection is closed', async () => {
    // The sweep is off here so that the request, not the sweep, meets the lapsed grant.
    const h = await startServer(serverSvid, both, { maxConnectionAgeMs: 0, sweepIntervalMs: 0 });
    const notAfter = Date.now() + 2_000;
    // Not backdated: the server asks for a re-handshake in the last quarter of the lifetime.
    const source = new StaticX509Source(await makeSvid(ca1, CLIENT_ID, { notBefore: new Date(Date.now() - 1_000), notAfter: new Date(notAfter) }), both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    try {
      const r1 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher, method: 'POST', body: '{}' });
      assert.equal(r1.statusCode, 200);
      await r1.body.dump();
      await waitFor(() => Date.now() > notAfter + 1_000, 'the client SVID expired');
      const r2 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher, method: 'POST', body: '{}' });
      assert.equal(r2.statusCode, 401, 'the request after notAfter is refused');
      assert.equal(r2.headers['connection'], 'close');
      await r2.body.dump();
      await waitFor(() => h.server.connections() === 0, 'connection closed after the 401');
      assert.equal(h.seen.length, 1, 'the handler never saw the caller after expiry');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('the sweep closes an idle connection once its client SVID expired', async () => {
    const h = await startServer(serverSvid, both, { maxConnectionAgeMs: 0 });
    const notAfter = Date.now() + 2_000;
    // Not backdated: the server asks for a re-handshake in the last quarter of the lifetime.
    const source = new StaticX509Source(await makeSvid(ca1, CLIENT_ID, { notBefore: new Date(Date.now() - 1_000), notAfter: new Date(notAfter) }), both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    try {
      const r1 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(r1.statusCode, 200);
      await r1.body.dump();
      assert.equal(h.server.connections(), 1);
      await waitFor(() => h.server.connections() === 0, 'idle expired connection closed by the sweep');
      assert.ok(Date.now() >= notAfter - 1_000, 'not closed long before notAfter (whole-second certificate times)');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('max connection age: a busy keep-alive connection is told to close and the client re-handshakes', async () => {
    const h = await startServer(serverSvid, both, { maxConnectionAgeMs: 300 });
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    const ports = new Set<number>();
    try {
      const deadline = Date.now() + 20_000;
      while (ports.size < 3 && Date.now() < deadline) {
        const r = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
        assert.equal(r.statusCode, 200);
        await r.body.dump();
        ports.add(h.remotePorts[h.remotePorts.length - 1] ?? 0);
      }
      assert.ok(ports.size >= 3, 'the client came back on new connections');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });
});

describe('no session resumption', () => {
  test('TLS-18 control: a plain Node server with tickets on does resume (the test mechanism works)', async () => {
    const srvLeaf = await issueLeaf(ca1, { uris: [SERVER_ID] });
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    const plain = https.createServer({ cert: srvLeaf.pem, key: pemKey(srvLeaf.key), ca: [ca1.pem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (_q, s) => s.end('ok'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const port = (plain.address() as net.AddressInfo).port;
      const first = await rawRequest(port, { ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key) });
      assert.equal(first.status, 200);
      const second = await rawRequest(port, { ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key), ...(first.session ? { session: first.session } : {}) });
      assert.equal(second.reused, true);
    } finally {
      plain.closeAllConnections();
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });

  test('TLS-18: after the bundle drops a CA, a client from that CA is refused even when it offers a saved session; nothing is ever resumed', async () => {
    const caOld = await createCa(TD1);
    const h = await startServer(serverSvid, bundleSetOf(ca1, caOld));
    const cl = await issueLeaf(caOld, { uris: [CLIENT_ID] });
    const opts = { ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key) };
    try {
      const first = await rawRequest(h.server.port, opts);
      assert.equal(first.status, 200);
      assert.ok(first.session, 'the client holds a session to offer');
      const again = await rawRequest(h.server.port, { ...opts, session: first.session as Buffer });
      assert.equal(again.status, 200);
      assert.equal(again.reused, false, 'no resumption even with an unchanged bundle');
      h.source.update(serverSvid, bundleSetOf(ca1));
      const before = h.seen.length;
      const after = await rawRequest(h.server.port, { ...opts, session: (again.session ?? first.session) as Buffer });
      assert.equal(after.reused, false);
      assert.equal(after.status, undefined, 'refused after the CA was dropped');
      assert.equal(h.seen.length, before);
    } finally {
      await h.server.close();
    }
  });

  test('TLS-19: reconnect with a saved session after the client leaf expired → full handshake, refused', async () => {
    const h = await startServer(serverSvid, both);
    // Valid long enough for the first handshake even on a loaded machine; then wait past expiry.
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID], notAfter: new Date(Date.now() + 5_000) });
    const opts = { ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key) };
    try {
      const first = await rawRequest(h.server.port, opts);
      assert.equal(first.status, 200);
      await sleep(Math.max(0, new Date(cl.cert.validTo).getTime() - Date.now()) + 1_100);
      const before = h.seen.length;
      const r = await rawRequest(h.server.port, { ...opts, session: first.session as Buffer });
      assert.equal(r.reused, false);
      assert.equal(r.status, undefined);
      assert.equal(h.seen.length, before);
    } finally {
      await h.server.close();
    }
  });
});

describe('malformed input never crashes the server', () => {
  test('garbage bytes, a partial hello and a stalled handshake are closed (the last after the handshake timeout); service continues', async () => {
    // Timing as structure: a connection closed before HS ms was not closed by the handshake
    // timeout (timers never fire early); one closed at or after it was. HS is long enough that
    // "closed at once" stays below it on a loaded machine; the upper bounds only catch a hang.
    const HS = 3_000;
    const h = await startServer(serverSvid, both, { handshakeTimeoutMs: HS });
    const port = h.server.port;
    const closedAfter = (payload: Buffer | null): Promise<number> => new Promise((resolve, reject) => {
      const t0 = Date.now();
      const s = net.connect(port, '127.0.0.1', () => { if (payload) s.write(payload); });
      s.on('error', () => { /* reset is fine */ });
      s.resume(); // read, so the server's FIN is seen
      s.on('close', () => resolve(Date.now() - t0));
      setTimeout(() => { s.destroy(); reject(new Error('not closed by the server')); }, HS + 60_000).unref();
    });
    try {
      const [garbage, random, partial, stalled] = await Promise.all([
        closedAfter(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff'.repeat(20), 'latin1')),
        closedAfter(Buffer.from(webcrypto.getRandomValues(new Uint8Array(4096)))),
        // A TLS record header announcing a ClientHello that never arrives.
        closedAfter(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])),
        closedAfter(null),
      ]);
      assert.ok(garbage < HS, `garbage closed before the handshake timeout (${garbage} ms)`);
      assert.ok(random < HS, `random bytes closed before the handshake timeout (${random} ms)`);
      assert.ok(partial >= HS - 50, `partial hello closed by the handshake timeout (${partial} ms)`);
      assert.ok(stalled >= HS - 50, `silent connection closed by the handshake timeout (${stalled} ms)`);
      assert.deepEqual(h.seen, []);
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      await h.server.close();
    }
  });

  test('slow headers: a verified connection that never finishes its headers gets 408 after headersTimeoutMs', async () => {
    const h = await startServer(serverSvid, both, { headersTimeoutMs: 500, requestTimeoutMs: 2_000 });
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    try {
      const t0 = Date.now();
      const text = await new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        const s = tls.connect({ host: '127.0.0.1', port: h.server.port, ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key), checkServerIdentity: () => undefined });
        s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n'));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', () => { /* closed */ });
        s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        setTimeout(() => s.destroy(), 60_000).unref();
      });
      const elapsed = Date.now() - t0;
      assert.match(text, /^HTTP\/1\.1 408/);
      // Not before headersTimeoutMs; the upper bound only catches a hang (a loaded machine).
      assert.ok(elapsed >= 450 && elapsed < 30_000, `closed after ${elapsed} ms`);
      assert.deepEqual(h.seen, []);
    } finally {
      await h.server.close();
    }
  });

  test('a verified connection that sends nothing is closed after headersTimeoutMs', async () => {
    const h = await startServer(serverSvid, both, { headersTimeoutMs: 500, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 10_000 });
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    try {
      const t0 = Date.now();
      let secured = 0;
      await new Promise<void>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: h.server.port, ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key), checkServerIdentity: () => undefined });
        s.on('secureConnect', () => { secured = Date.now(); });
        s.on('error', () => { /* closed */ });
        s.resume();
        s.on('close', () => resolve());
        setTimeout(() => s.destroy(), 60_000).unref();
      });
      const elapsed = Date.now() - t0;
      assert.ok(secured > 0, 'handshake completed');
      // Not before headersTimeoutMs, and well before the 10 s keep-alive timeout (so it was the
      // headers timeout that closed it); generous for a loaded machine.
      assert.ok(elapsed >= 450 && elapsed < 9_000, `idle verified connection closed after ${elapsed} ms`);
    } finally {
      await h.server.close();
    }
  });

  test('TLS-01/02 flood: 300 refused handshakes, then normal service (the listener never closes)', async () => {
    const h = await startServer(serverSvid, both);
    const selfSigned = await issueLeaf(undefined, { uris: [CLIENT_ID], selfSigned: true });
    const bad = { ca: [ca1.pem], cert: selfSigned.pem, key: pemKey(selfSigned.key) };
    try {
      let refused = 0;
      for (let batch = 0; batch < 10; batch++) {
        const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => rawRequest(h.server.port, i % 2 ? bad : { ca: [ca1.pem] })));
        refused += rs.filter((r) => r.status === undefined).length;
      }
      assert.equal(refused, 300);
      assert.deepEqual(h.seen, []);
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      await h.server.close();
    }
  });

  test('close(): resolves promptly with an idle keep-alive connection open; lets an in-flight request finish', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    let slowArrived = false;
    const h = await startServer(serverSvid, both, {
      handler: async (req, res) => {
        if (req.url === '/slow') {
          slowArrived = true;
          await gate;
        }
        res.end('done');
      },
    });
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 2, keepAliveTimeoutMs: 30_000 });
    try {
      const first = await request(`https://127.0.0.1:${h.server.port}/fast`, { dispatcher });
      await first.body.dump();
      const slow = request(`https://127.0.0.1:${h.server.port}/slow`, { dispatcher });
      await until(() => slowArrived, 30_000, 'the slow request to reach its handler');
      const t0 = Date.now();
      const closing = h.server.close();
      setTimeout(release, 300);
      const res = await slow;
      assert.equal(await res.body.text(), 'done', 'in-flight request completed');
      await closing;
      const elapsed = Date.now() - t0;
      // "Promptly" as structure: close() did not wait for the idle keep-alive connection's 30 s
      // timeout (the bound is far below it, and far above a loaded machine's noise).
      assert.ok(elapsed < 15_000, `close took ${elapsed} ms`);
      // the raw TCP socket reports 'close' a tick after the TLS socket
      await until(() => h.server.connections() === 0, 30_000, 'no open connections');
    } finally {
      release();
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('handshake budget: idle sockets beyond it evict the oldest idle ones, never block a real client', async () => {
    const h = await startServer(serverSvid, both, { maxHandshakes: 4, maxHandshakesPerSource: 4, handshakeTimeoutMs: 30_000 });
    const held: net.Socket[] = [];
    let closedByServer = 0;
    try {
      for (let i = 0; i < 10; i++) {
        const s = net.connect(h.server.port, '127.0.0.1');
        s.on('error', () => { /* reset */ });
        s.on('close', () => { closedByServer++; });
        held.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      await waitFor(() => closedByServer >= 6, 'the six oldest idle sockets were evicted');
      assert.ok(h.server.handshaking() <= 4);
      assert.ok(h.logs().some((l) => l['event'] === 'tls_handshake_evicted_per_source' || l['event'] === 'tls_handshake_evicted'));
      // A real client still gets in (it evicts an idle socket, then finishes in milliseconds).
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      for (const s of held) s.destroy();
      await h.server.close();
    }
  });

  test('verified connection limit: a newcomer closes the longest-idle verified connection; it never waits for a slot', async () => {
    const h = await startServer(serverSvid, both, { maxConnections: 1 });
    const a = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    const b = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    try {
      const r1 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: a });
      assert.equal(r1.statusCode, 200);
      await r1.body.dump();
      const portA = h.remotePorts[h.remotePorts.length - 1];
      const r2 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: b });
      assert.equal(r2.statusCode, 200, 'the newcomer got in');
      await r2.body.dump();
      await waitFor(() => h.server.connections() === 1, 'the idle connection made room');
      assert.ok(h.logs().some((l) => l['event'] === 'tls_connection_evicted_idle'));
      const r3 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: a });
      assert.equal(r3.statusCode, 200, 'the evicted client simply reconnects');
      await r3.body.dump();
      assert.notEqual(h.remotePorts[h.remotePorts.length - 1], portA, 'on a new connection');
    } finally {
      await a.close();
      await b.close();
      await h.server.close();
    }
  });
});

describe('peer chain extraction', () => {
  test('peerChainDer returns leaf then intermediates (no trust anchor) and [] without a peer certificate', async () => {
    const inter = await createIntermediate(ca1);
    const leaf = await issueLeaf(inter, { uris: [CLIENT_ID] });
    const srvLeaf = await issueLeaf(ca1, { uris: [SERVER_ID] });
    const chains: Uint8Array[][] = [];
    const srv = tls.createServer({ cert: srvLeaf.pem, key: pemKey(srvLeaf.key), ca: [ca1.pem], requestCert: true, rejectUnauthorized: false }, (s) => {
      chains.push(peerChainDer(s));
      s.end();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      await rawRequest(port, { ca: [ca1.pem], cert: certPem(leaf, ...inter.chain), key: pemKey(leaf.key) });
      await rawRequest(port, { ca: [ca1.pem] });
      assert.equal(chains.length, 2);
      const [withCert, without] = chains as [Uint8Array[], Uint8Array[]];
      assert.equal(withCert.length, 2);
      assert.ok(Buffer.from(withCert[0] as Uint8Array).equals(leaf.der));
      assert.ok(Buffer.from(withCert[1] as Uint8Array).equals(inter.der));
      assert.deepEqual(without, []);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
