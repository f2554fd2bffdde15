/**
 * The SPIFFE SVID rules at the server (TLS-04…TLS-17, TLS-20): every forbidden client SVID is
 * refused before any handler runs, and nothing about it reaches the logs.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import 'reflect-metadata';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import https from 'node:https';
import { webcrypto, KeyObject, X509Certificate } from 'node:crypto';
import * as px from '@peculiar/x509';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { createIntermediate, issueLeaf, KeyUsage, type TestCa, type TestCert } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, TD1, SERVER_ID, CLIENT_ID, startServer, pemKey, rawRequest, certPem, until, type Harness,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, ca2: TestCa, serverSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, ca2, serverSvid, both } = await createMtlsPki()));

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
