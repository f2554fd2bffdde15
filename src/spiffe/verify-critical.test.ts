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
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
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

/** A critical name-constraints extension permitting or excluding URIs whose host is `host`. */
function uriConstraint(kind: 'permittedSubtrees' | 'excludedSubtrees', host: string): px.Extension {
  const subtrees = new GeneralSubtrees([new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: host }) })]);
  return new px.Extension('2.5.29.30', true, AsnConvert.serialize(new NameConstraints({ [kind]: subtrees })));
}

/** Dials a server with `serverSvid` as `client`; resolves with the dial's error, or null. */
async function dialServer(server: Awaited<ReturnType<typeof makeSvid>>, client: Awaited<ReturnType<typeof makeSvid>>, trust: X509BundleSet): Promise<{ err: Error | null; seen: string[] }> {
  const h = await startServer(server, trust);
  const source = new StaticX509Source(client, trust);
  try {
    const err = await new Promise<Error | null>((resolve) => {
      dialMtls({ hostname: '127.0.0.1', port: h.server.port }, { source, authorizeServer: authorizeAny(), context: contextCache(source), timeoutMs: 10_000, timeoutError: () => new Error('timeout') }, (e, s) => {
        s?.destroy();
        resolve(e);
      });
    });
    return { err, seen: h.seen };
  } finally {
    await h.server.close();
  }
}

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

test('critical extensions: extended key usage accepted; name constraints only after OpenSSL; unknown ones never', async () => {
  const eku = await issueLeaf(ca, { uris: [ID], extraExtensions: [new px.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2'], true)] });
  assert.equal(verifyX509Svid([eku.der], bundles).toString(), ID);
  // Name constraints are not processed by the standalone verifier: refused there when critical,
  // accepted when the caller says OpenSSL already verified the chain (and enforced them).
  const nc = await createIntermediate(ca, { extraExtensions: [uriConstraint('permittedSubtrees', 'td1.test')] });
  const leaf = await issueLeaf(nc, { uris: [ID] });
  assert.equal(code(() => verifyX509Svid(chainOf(leaf, nc), bundles)), 'svid_unhandled_critical_extension');
  assert.equal(verifyX509Svid(chainOf(leaf, nc), bundles, new Date(), { opensslVerified: true }).toString(), ID);
  // Even after OpenSSL, a critical extension OpenSSL does not support is refused (a path it did not see).
  const odd = await issueLeaf(ca, { uris: [ID], extraExtensions: [unknown(true)] });
  assert.equal(code(() => verifyX509Svid([odd.der], bundles, new Date(), { opensslVerified: true })), 'svid_unhandled_critical_extension');
});

test('a server whose SVID has an unknown critical extension fails the handshake', async () => {
  const r = await dialServer(await makeSvid(ca, 'spiffe://td1.test/spike/nexus', { extraExtensions: [unknown(true)] }), await makeSvid(ca, ID), bundles);
  assert.ok(r.err !== null, 'the dial was refused');
  // OpenSSL's verdict (Node 20 gives it the code UNSPECIFIED, so the message is checked).
  assert.match(String((r.err as { cause?: Error }).cause?.message), /unhandled critical extension/, String(r.err));
  assert.deepEqual(r.seen, [], 'no request reached the server');
});

test('a critical URI name constraint is enforced on TLS: a server SVID outside it is refused, one inside it accepted', async () => {
  const excluding = await createIntermediate(ca, { extraExtensions: [uriConstraint('excludedSubtrees', 'td1.test')] });
  const permitting = await createIntermediate(ca, { extraExtensions: [uriConstraint('permittedSubtrees', 'td1.test')] });
  const client = await makeSvid(ca, ID);
  const refused = await dialServer(await makeSvid(excluding, 'spiffe://td1.test/spike/nexus'), client, bundles);
  assert.ok(refused.err !== null, 'a leaf inside an excluded subtree is refused');
  assert.match(String((refused.err as { cause?: Error }).cause?.message), /subtree violation/, String(refused.err));
  const accepted = await dialServer(await makeSvid(permitting, 'spiffe://td1.test/spike/nexus'), client, bundles);
  assert.equal(accepted.err, null, 'a leaf inside a permitted subtree is accepted (OpenSSL enforced the constraint, the SPIFFE rules accept it)');
  // The standalone verifier, which does not process name constraints, refuses the same chain.
  const leaf = await issueLeaf(permitting, { uris: [ID] });
  assert.equal(code(() => verifyX509Svid(chainOf(leaf, permitting), bundles)), 'svid_unhandled_critical_extension');
});
