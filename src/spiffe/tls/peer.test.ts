/**
 * Peer chain extraction from a TLS socket (peerChainDer), against a plain Node TLS server and
 * the test PKI (test/helpers/mtls-harness.ts).
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { peerChainDer } from './peer.js';
import { createIntermediate, issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, SERVER_ID, CLIENT_ID, pemKey, rawRequest, certPem,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa;
before(async () => ({ ca1 } = await createMtlsPki()));

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
