/**
 * mTLS server and client basics: the handler gets the typed SPIFFE ID, keep-alive pooling,
 * refusals at the handshake (TLS-01, TLS-02, TLS-20), a throwing handler.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { SpiffeId } from '../id.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny, authorizeId } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
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
