/**
 * No session resumption (TLS-18, TLS-19): every connection runs a full handshake against the
 * current bundle.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import https from 'node:https';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { bundleSetOf, createCa, issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, TD1, SERVER_ID, CLIENT_ID, startServer, pemKey, rawRequest, sleep,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, serverSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, serverSvid, both } = await createMtlsPki()));

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
