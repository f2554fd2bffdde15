/**
 * The client dispatcher checks the server (TLS-21, TLS-08, TLS-04 from the client side) before
 * any request byte is sent; no hostname check.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { PeerRejectedError } from './peer.js';
import { SpiffeId, TrustDomain } from '../id.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny, authorizeId, authorizeMemberOf } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, KeyUsage, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, TD1, SERVER_ID, startServer, rawSvid,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, ca2: TestCa, serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, ca2, serverSvid, clientSvid, both } = await createMtlsPki()));

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
