/**
 * mTLS server and client basics: the handler gets the typed SPIFFE ID, keep-alive pooling,
 * refusals at the handshake (TLS-01, TLS-02, TLS-20), a throwing handler, and closing with
 * requests on their way (FI-18), and nothing left running after a close.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { SpiffeId } from '../id.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny, authorizeId } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
import { MTLS_DEFAULTS } from './context.js';
import {
  createMtlsPki, SERVER_ID, CLIENT_ID, startServer, pemKey, rawRequest, sleep, type Harness,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, serverSvid, clientSvid, both } = await createMtlsPki()));

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

/** A raw keep-alive mTLS connection: `send` writes one request, `text()` is every byte received. */
async function keepAlive(port: number, svid: X509Svid, ca: TestCa): Promise<{ send: () => void; text: () => string; closed: Promise<void> }> {
  const data: Buffer[] = [];
  const sock = tls.connect({ host: '127.0.0.1', port, ca: [ca.pem], cert: svid.certificates.map((c) => c.toString()).join(''), key: pemKey(svid.privateKey), checkServerIdentity: () => undefined });
  sock.on('data', (c: Buffer) => data.push(c));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((r, j) => { sock.once('secureConnect', () => r()); sock.once('error', j); });
  return {
    send: () => { sock.write('POST /k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n'); },
    text: () => Buffer.concat(data).toString('latin1'),
    closed,
  };
}

describe('closing with requests on their way (FI-18)', () => {
  test('a request written on an idle keep-alive connection as close() is called is answered with Connection: close; connections left idle close after the drain', async () => {
    const h = await startServer(serverSvid, both);
    const busy = await keepAlive(h.server.port, clientSvid, ca1);
    const idle = await keepAlive(h.server.port, clientSvid, ca1);
    busy.send();
    idle.send();
    const answers = (t: string): number => t.split('HTTP/1.1 200').length - 1;
    for (let i = 0; i < 200 && (answers(busy.text()) < 1 || answers(idle.text()) < 1); i++) await sleep(10);
    assert.equal(answers(busy.text()), 1, 'first answer on each kept-alive connection');
    assert.equal(answers(idle.text()), 1, 'first answer on each kept-alive connection');
    assert.doesNotMatch(busy.text() + idle.text(), /connection: close/i);

    const t0 = performance.now();
    const closing = h.server.close();
    // Written after close() began, before the server could read it: https' own close() would
    // have closed this idle connection at once, and the client would see a reset or EOF.
    busy.send();
    await closing;
    const ms = performance.now() - t0;
    await busy.closed;
    await idle.closed;
    assert.equal(answers(busy.text()), 2, `the request on its way was answered: ${JSON.stringify(busy.text().slice(-200))}`);
    assert.match(busy.text().slice(busy.text().lastIndexOf('HTTP/1.1 200')), /connection: close/i);
    assert.equal(answers(idle.text()), 1, 'the idle connection got nothing more and was closed');
    assert.ok(ms >= MTLS_DEFAULTS.closeDrainMs - 5 && ms < MTLS_DEFAULTS.closeGraceMs, `closed after the drain, before the grace ran out (${Math.round(ms)} ms)`);
  });

  test('a closed server leaves nothing running that keeps it in memory (Node\'s request-timeout timer stopped)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // The handler is reachable only through the server: collected once nothing holds the server.
    const run = async (): Promise<WeakRef<object>> => {
      const handler = (_q: unknown, r: { end: (s: string) => void }): void => r.end('ok');
      const h = await startServer(serverSvid, both, { handler: handler as never });
      await h.server.close();
      return new WeakRef(handler);
    };
    const gone = await run();
    for (let i = 0; i < 20 && gone.deref() !== undefined; i++) {
      await sleep(10);
      gc();
    }
    assert.equal(gone.deref(), undefined, 'the closed server was collected');
  });
});
