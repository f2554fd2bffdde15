/**
 * Critical extensions (RFC 5280 §4.2): a verifier must refuse a certificate with a critical
 * extension it does not process. The standalone verifier (verify.ts) refuses any outside
 * HANDLED_EXTENSIONS, on the leaf and on every signer of the path, as go-spiffe's (Go's x509)
 * does; on the TLS paths OpenSSL refuses them during the handshake, before the SPIFFE rules run.
 */
import 'reflect-metadata';
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as px from '@peculiar/x509';
import { bundleSetOf, chainOf, createCa, createIntermediate, issueLeaf, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { startServer } from '../../test/helpers/mtls-harness.js';
import { verifyX509Svid } from './verify.js';
import { X509BundleSet } from './bundle.js';
import { StaticX509Source } from './source.js';
import { authorizeAny } from './authorize.js';
import { contextCache, dialMtls } from './tls/dial.js';

const ID = 'spiffe://td1.test/workload/a';
/** An extension nobody processes (a private arc), DER NULL as its value. */
const unknown = (critical: boolean): px.Extension => new px.Extension('1.3.6.1.4.1.99999.1', critical, new Uint8Array([0x05, 0x00]));

let ca: TestCa;
let bundles: X509BundleSet;
before(async () => {
  ca = await createCa('td1.test');
  bundles = bundleSetOf(ca);
});

const code = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

test('a leaf with an unknown critical extension is refused; the same extension not critical is accepted', async () => {
  const crit = await issueLeaf(ca, { uris: [ID], extraExtensions: [unknown(true)] });
  const plain = await issueLeaf(ca, { uris: [ID], extraExtensions: [unknown(false)] });
  assert.equal(code(() => verifyX509Svid([crit.der], bundles)), 'svid_unhandled_critical_extension');
  assert.equal(verifyX509Svid([plain.der], bundles).toString(), ID);
});

test('an intermediate or an authority with an unknown critical extension anchors nothing', async () => {
  const im = await createIntermediate(ca, { extraExtensions: [unknown(true)] });
  const leaf = await issueLeaf(im, { uris: [ID] });
  assert.equal(code(() => verifyX509Svid(chainOf(leaf, im), bundles)), 'svid_unhandled_critical_extension');

  const root = await createCa('td1.test', { name: 'critical-root', extraExtensions: [unknown(true)] });
  const under = await issueLeaf(root, { uris: [ID] });
  assert.equal(code(() => verifyX509Svid([under.der], bundleSetOf(root))), 'svid_unhandled_critical_extension');
});

test('critical extensions the rules process are accepted (extended key usage, name constraints after OpenSSL)', async () => {
  const eku = await issueLeaf(ca, { uris: [ID], extraExtensions: [new px.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2'], true)] });
  assert.equal(verifyX509Svid([eku.der], bundles).toString(), ID);
  // Name constraints are not processed by the standalone verifier: refused there when critical,
  // accepted when the caller says OpenSSL already verified the chain (and enforced them).
  const nc = await createIntermediate(ca, { extraExtensions: [new px.Extension('2.5.29.30', true, new Uint8Array([0x30, 0x00]))] });
  const leaf = await issueLeaf(nc, { uris: [ID] });
  assert.equal(code(() => verifyX509Svid(chainOf(leaf, nc), bundles)), 'svid_unhandled_critical_extension');
  assert.equal(verifyX509Svid(chainOf(leaf, nc), bundles, new Date(), { opensslVerified: true }).toString(), ID);
});

test('a server whose SVID has an unknown critical extension fails the handshake', async () => {
  const h = await startServer(await makeSvid(ca, 'spiffe://td1.test/spike/nexus', { extraExtensions: [unknown(true)] }), bundles);
  const source = new StaticX509Source(await makeSvid(ca, ID), bundles);
  try {
    const err = await new Promise<Error | null>((resolve) => {
      dialMtls({ hostname: '127.0.0.1', port: h.server.port }, { source, authorizeServer: authorizeAny(), context: contextCache(source), timeoutMs: 10_000, timeoutError: () => new Error('timeout') }, (e, s) => {
        s?.destroy();
        resolve(e);
      });
    });
    assert.ok(err !== null, 'the dial was refused');
    // OpenSSL's verdict (Node 20 gives it the code UNSPECIFIED, so the message is checked).
    const cause = (err as { cause?: Error }).cause;
    assert.match(String(cause?.message), /unhandled critical extension/, String(err));
    assert.deepEqual(h.seen, [], 'no request reached the server');
  } finally {
    await h.server.close();
  }
});
