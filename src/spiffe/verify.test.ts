import 'reflect-metadata';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as px from '@peculiar/x509';
import fc from 'fast-check';
import {
  bundleSetOf,
  chainOf,
  createCa,
  createIntermediate,
  issueLeaf,
  KeyUsage,
  type TestCa,
} from '../../test/helpers/pki.js';
import { SvidVerificationError, verifyX509Svid, verifyX509SvidDetailed, type SvidErrorCode } from './verify.js';
import { X509Bundle, X509BundleSet } from './bundle.js';
import { TrustDomain } from './id.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

let ca1: TestCa; // td1.test root
let ca2: TestCa; // td2.test root
let im1: TestCa; // td1.test intermediate
let both: X509BundleSet;

before(async () => {
  ca1 = await createCa('td1.test');
  ca2 = await createCa('td2.test');
  im1 = await createIntermediate(ca1);
  both = bundleSetOf(ca1, ca2);
});

function rejects(chain: readonly Uint8Array[], code: SvidErrorCode, bundles: X509BundleSet = both, now?: Date): void {
  assert.throws(
    () => verifyX509Svid(chain, bundles, now),
    (e: unknown) => {
      assert.ok(e instanceof SvidVerificationError, `expected SvidVerificationError, got ${String(e)}`);
      assert.equal(e.code, code);
      // Fixed messages: never the ID or any certificate text.
      assert.ok(!e.message.includes('spiffe://'));
      assert.ok(!e.message.includes('td1.test'));
      return true;
    },
  );
}

const ID = 'spiffe://td1.test/workload/a';
const SUPERUSER = 'spiffe://td1.test/spike/pilot/role/superuser';

describe('accepts', () => {
  test('a leaf issued directly by the trust domain root', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    const id = verifyX509Svid([leaf.der], both);
    assert.equal(id.toString(), ID);
  });

  test('a leaf via one intermediate', async () => {
    const leaf = await issueLeaf(im1, { uris: [ID] });
    const v = verifyX509SvidDetailed(chainOf(leaf, im1), both);
    assert.equal(v.id.toString(), ID);
    assert.equal(v.path.length, 3);
    assert.ok(v.path[2]?.node.raw.equals(ca1.der));
  });

  test('a leaf via two intermediates presented in reverse order', async () => {
    const im2 = await createIntermediate(im1);
    const leaf = await issueLeaf(im2, { uris: [ID] });
    const chain = chainOf(leaf, im2);
    assert.equal(chain.length, 3);
    assert.equal(verifyX509Svid([chain[0]!, chain[2]!, chain[1]!], both).toString(), ID);
  });

  test('a chain that also presents the root itself', async () => {
    const leaf = await issueLeaf(im1, { uris: [ID] });
    assert.equal(verifyX509Svid([...chainOf(leaf, im1), ca1.der], both).toString(), ID);
  });

  test('a federated trust domain verified against its own bundle', async () => {
    const leaf = await issueLeaf(ca2, { uris: ['spiffe://td2.test/x'] });
    assert.equal(verifyX509Svid([leaf.der], both).toString(), 'spiffe://td2.test/x');
  });

  test('a leaf without key identifier extensions', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], noKeyIds: true });
    assert.equal(verifyX509Svid([leaf.der], both).toString(), ID);
  });

  test('any extended key usage (none here) and a CA without pathLen', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], keyUsages: KeyUsage.digitalSignature });
    assert.equal(verifyX509Svid([leaf.der], both).toString(), ID);
  });
});

describe('rejects', () => {
  test('an empty chain', () => {
    rejects([], 'svid_empty_chain');
  });

  test('garbage bytes as the leaf', () => {
    rejects([Buffer.from('not a certificate')], 'svid_malformed');
    rejects([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])], 'svid_malformed');
  });

  test('a leaf with trailing bytes after the certificate', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    rejects([Buffer.concat([leaf.der, Buffer.from([0])])], 'svid_malformed');
  });

  test('TLS-02: self-signed leaf with a plausible superuser ID', async () => {
    const leaf = await issueLeaf(undefined, { uris: [SUPERUSER], selfSigned: true });
    rejects([leaf.der], 'svid_untrusted_chain');
  });

  test('TLS-04: td2 CA issues a leaf claiming a td1 ID while both CAs are trusted', async () => {
    const leaf = await issueLeaf(ca2, { uris: [SUPERUSER] });
    rejects([leaf.der], 'svid_untrusted_chain');
    // Same forgery through a td2 intermediate presented in the chain.
    const im2 = await createIntermediate(ca2);
    const leaf2 = await issueLeaf(im2, { uris: [SUPERUSER] });
    rejects(chainOf(leaf2, im2), 'svid_untrusted_chain');
  });

  test('TLS-04: a td1 leaf when only td2 has a bundle', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    rejects([leaf.der], 'svid_no_bundle', bundleSetOf(ca2));
    rejects([leaf.der], 'svid_no_bundle', new X509BundleSet([new X509Bundle(TrustDomain.parse('td1.test'), [])]));
  });

  test('TLS-05: expired leaf', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], notBefore: new Date(Date.now() - 2 * HOUR), notAfter: new Date(Date.now() - MIN) });
    rejects([leaf.der], 'svid_expired');
  });

  test('TLS-06: leaf with notBefore = now + 10 min (no skew allowance)', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], notBefore: new Date(Date.now() + 10 * MIN) });
    rejects([leaf.der], 'svid_not_yet_valid');
  });

  test('TLS-05/06: the `now` argument decides validity', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    rejects([leaf.der], 'svid_expired', both, new Date(Date.now() + 2 * HOUR));
    rejects([leaf.der], 'svid_not_yet_valid', both, new Date(Date.now() - 2 * MIN));
  });

  test('TLS-07: valid leaf under an expired intermediate', async () => {
    const oldIm = await createIntermediate(ca1, { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - MIN) });
    const leaf = await issueLeaf(oldIm, { uris: [ID] });
    rejects(chainOf(leaf, oldIm), 'svid_expired');
  });

  test('TLS-07: valid leaf under an expired root', async () => {
    const oldCa = await createCa('td1.test', { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - MIN) });
    const leaf = await issueLeaf(oldCa, { uris: [ID] });
    rejects([leaf.der], 'svid_expired', bundleSetOf(oldCa));
  });

  test('TLS-08: CA:TRUE leaf (digitalSignature+keyCertSign) signed by a trusted CA', async () => {
    const leaf = await issueLeaf(ca1, { uris: [SUPERUSER], isCA: true, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
    rejects([leaf.der], 'svid_leaf_is_ca');
  });

  test('TLS-08: CA:TRUE leaf with only digitalSignature', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], isCA: true, keyUsages: KeyUsage.digitalSignature });
    rejects([leaf.der], 'svid_leaf_is_ca');
  });

  test('TLS-09: CA:FALSE leaf with keyCertSign', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
    rejects([leaf.der], 'svid_leaf_key_cert_sign');
  });

  test('TLS-09: CA:FALSE leaf with cRLSign', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], keyUsages: KeyUsage.digitalSignature | KeyUsage.cRLSign });
    rejects([leaf.der], 'svid_leaf_crl_sign');
  });

  test('TLS-10: leaf whose key usage lacks digitalSignature', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], keyUsages: KeyUsage.keyEncipherment | KeyUsage.keyAgreement });
    rejects([leaf.der], 'svid_leaf_no_digital_signature');
  });

  test('TLS-10: leaf without a key usage extension', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID], keyUsages: null });
    rejects([leaf.der], 'svid_leaf_no_digital_signature');
  });

  test('TLS-11: leaf with two URI SANs (benign workload + superuser)', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID, SUPERUSER] });
    rejects([leaf.der], 'svid_multiple_uri_sans');
    const reversed = await issueLeaf(ca1, { uris: [SUPERUSER, ID] });
    rejects([reversed.der], 'svid_multiple_uri_sans');
  });

  test('TLS-11: two SAN extensions with one URI each', async () => {
    const leaf = await issueLeaf(ca1, {
      uris: [ID],
      extraExtensions: [new px.SubjectAlternativeNameExtension([{ type: 'url', value: SUPERUSER }])],
    });
    rejects([leaf.der], 'svid_duplicate_extension');
  });

  test('TLS-12: leaf with no URI SAN (DNS name only)', async () => {
    const leaf = await issueLeaf(ca1, { dnsNames: ['td1.test'] });
    rejects([leaf.der], 'svid_no_uri_san');
    const noSan = await issueLeaf(ca1, {});
    rejects([noSan.der], 'svid_no_uri_san');
  });

  test('TLS-13: non-SPIFFE URI https://td1.test/spike/nexus', async () => {
    const leaf = await issueLeaf(ca1, { uris: ['https://td1.test/spike/nexus'] });
    rejects([leaf.der], 'svid_bad_spiffe_id');
  });

  test('TLS-13: upper-case scheme SPIFFE://', async () => {
    const leaf = await issueLeaf(ca1, { uris: ['SPIFFE://td1.test/spike/nexus'] });
    rejects([leaf.der], 'svid_bad_spiffe_id');
  });

  test('TLS-13: single-slash spiffe:/td1.test/x', async () => {
    const leaf = await issueLeaf(ca1, { uris: ['spiffe:/td1.test/x'] });
    rejects([leaf.der], 'svid_bad_spiffe_id');
  });

  const malformed = [
    'spiffe://TD1.test/x',
    'spiffe://td1.test/%2e%2e/x',
    'spiffe://td1.test/./x',
    'spiffe://td1.test/../x',
    'spiffe://td1.test//x',
    'spiffe://td1.test/x/',
    'spiffe://td1.test:443/x',
    'spiffe://u@td1.test/x',
    'spiffe://td1.test/x?q',
    'spiffe://td1.test/x#f',
    'spiffe://td1.test/' + 'a'.repeat(2100),
  ];
  for (const uri of malformed) {
    test(`TLS-14: malformed SPIFFE ID in the single SAN: ${uri.slice(0, 40)}${uri.length > 40 ? '…' : ''}`, async () => {
      const leaf = await issueLeaf(ca1, { uris: [uri] });
      rejects([leaf.der], 'svid_bad_spiffe_id');
    });
  }

  test('TLS-14: bare trust domain ID on a workload leaf (X509-SVID §5.2 non-root path)', async () => {
    const leaf = await issueLeaf(ca1, { uris: ['spiffe://td1.test'] });
    rejects([leaf.der], 'svid_leaf_no_path');
  });

  test('TLS-15: SAN string injection in a single URI SAN', async () => {
    const leaf = await issueLeaf(ca1, { uris: [`spiffe://td1.test/evil, URI:${SUPERUSER}`] });
    // Node's own string view escapes it; we never read that string at all.
    assert.match(leaf.cert.subjectAltName ?? '', /URI:/);
    rejects([leaf.der], 'svid_bad_spiffe_id');
  });

  test('TLS-17: an "intermediate" with CA:FALSE', async () => {
    const notCa = await createIntermediate(ca1, { isCA: false, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
    const leaf = await issueLeaf(notCa, { uris: [ID] });
    rejects(chainOf(leaf, notCa), 'svid_intermediate_not_ca');
  });

  test('TLS-17: an intermediate without basic constraints', async () => {
    const notCa = await createIntermediate(ca1, { isCA: null, keyUsages: KeyUsage.digitalSignature });
    const leaf = await issueLeaf(notCa, { uris: [ID] });
    rejects(chainOf(leaf, notCa), 'svid_intermediate_not_ca');
  });

  test('intermediate CA without keyCertSign', async () => {
    const im = await createIntermediate(ca1, { keyUsages: KeyUsage.digitalSignature | KeyUsage.cRLSign });
    const leaf = await issueLeaf(im, { uris: [ID] });
    rejects(chainOf(leaf, im), 'svid_intermediate_no_key_cert_sign');
  });

  test('TLS-17: CA certificate placed first', async () => {
    const leaf = await issueLeaf(im1, { uris: [ID] });
    rejects([im1.der, leaf.der], 'svid_no_uri_san');
    const caWithUri = await createIntermediate(ca1, { uris: [SUPERUSER] });
    rejects([caWithUri.der, leaf.der], 'svid_leaf_is_ca');
  });

  test('TLS-17: an unrelated valid SVID appended does not change the identity', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    const other = await issueLeaf(ca1, { uris: [SUPERUSER] });
    assert.equal(verifyX509Svid([leaf.der, other.der], both).toString(), ID);
  });

  test('TLS-17: a self-issued cert copying a trusted leaf serial, issuer and AKID', async () => {
    const real = await issueLeaf(ca1, { uris: [SUPERUSER] });
    const attackerCa = await createCa('td1.test', { name: 'attacker' });
    const impostorIssuer: TestCa = { ...attackerCa, name: ca1.name };
    const forged = await issueLeaf(impostorIssuer, {
      uris: [SUPERUSER],
      serial: real.x509.serialNumber,
      noKeyIds: true,
      extraExtensions: [await px.AuthorityKeyIdentifierExtension.create(ca1.keys.publicKey)],
    });
    assert.equal(forged.cert.issuer, real.cert.issuer);
    assert.equal(forged.cert.serialNumber, real.cert.serialNumber);
    rejects([forged.der], 'svid_untrusted_chain');
  });

  test('a leaf whose AKID names another key although the signature is good (OpenSSL rule)', async () => {
    const leaf = await issueLeaf(ca1, {
      uris: [ID],
      noKeyIds: true,
      extraExtensions: [await px.AuthorityKeyIdentifierExtension.create(ca2.keys.publicKey)],
    });
    assert.ok(leaf.cert.verify(ca1.cert.publicKey));
    rejects([leaf.der], 'svid_untrusted_chain');
  });

  test('a leaf whose signature was tampered with', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    const bad = Buffer.from(leaf.der);
    bad[bad.length - 5] = (bad[bad.length - 5] as number) ^ 0x01;
    assert.throws(() => verifyX509Svid([bad], both), SvidVerificationError);
  });

  test('after the bundle drops the CA (trust rotation)', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    const set = bundleSetOf(ca1, ca2);
    assert.equal(verifyX509Svid([leaf.der], set).toString(), ID);
    const newCa = await createCa('td1.test');
    set.set(new X509Bundle(TrustDomain.parse('td1.test'), [newCa.cert]));
    rejects([leaf.der], 'svid_untrusted_chain', set);
  });

  test('a root pathLenConstraint of 0 with an intermediate below it', async () => {
    const strict = await createCa('td1.test', { pathLength: 0 });
    const im = await createIntermediate(strict);
    const leaf = await issueLeaf(im, { uris: [ID] });
    rejects(chainOf(leaf, im), 'svid_path_too_long', bundleSetOf(strict));
    // Directly under the root it is fine.
    const direct = await issueLeaf(strict, { uris: [ID] });
    assert.equal(verifyX509Svid([direct.der], bundleSetOf(strict)).toString(), ID);
  });

  test('a path of more than 8 intermediates', async () => {
    let ca = ca1;
    for (let i = 0; i < 9; i++) ca = await createIntermediate(ca);
    const leaf = await issueLeaf(ca, { uris: [ID] });
    const chain = chainOf(leaf, ca);
    assert.equal(chain.length, 10);
    rejects(chain, 'svid_path_too_long');
    // 8 intermediates are fine.
    const leaf8 = await issueLeaf(ca.parent!, { uris: [ID] });
    assert.equal(verifyX509Svid(chainOf(leaf8, ca.parent!), both).toString(), ID);
  });

  test('more than 16 presented certificates', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    rejects(Array.from({ length: 17 }, () => leaf.der), 'svid_chain_too_long');
  });

  test('a loop of cross-signed intermediates terminates and is refused', async () => {
    const other = await createCa('td1.test', { name: 'loop-root' }); // not in the bundle
    const x = await createIntermediate(other, { name: 'loop-x' });
    const y = await createIntermediate(x, { name: 'loop-y' });
    // x' has x's name and key but is issued by y: x → y → x' (= x) → y ...
    const xPrime = await createIntermediate(y, { name: 'loop-x', keys: x.keys });
    const leaf = await issueLeaf(x, { uris: [ID] });
    const t0 = performance.now();
    rejects([leaf.der, y.der, xPrime.der, x.der, y.der, xPrime.der], 'svid_untrusted_chain');
    // Terminates: a loop-following verifier would never return; the bound is only a hang guard.
    assert.ok(performance.now() - t0 < 10_000);
  });
});

describe('hostile bytes', () => {
  test('property: a mutated leaf never verifies as another ID and only fails with SvidVerificationError', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    fc.assert(
      fc.property(
        fc.array(fc.record({ pos: fc.nat({ max: leaf.der.length - 1 }), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
        (muts) => {
          const bad = Buffer.from(leaf.der);
          for (const m of muts) bad[m.pos] = (bad[m.pos] as number) ^ m.xor;
          try {
            const id = verifyX509Svid([bad], both);
            // Only mutations outside the signed bytes' meaning could pass; the ID must not change.
            assert.equal(id.toString(), ID);
          } catch (e) {
            assert.ok(e instanceof SvidVerificationError, String(e));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('property: random bytes and truncations are refused as malformed', async () => {
    const leaf = await issueLeaf(ca1, { uris: [ID] });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.nat({ max: leaf.der.length - 1 }).map((n) => leaf.der.subarray(0, n))), (bytes) => {
        assert.throws(() => verifyX509Svid([bytes], both), SvidVerificationError);
      }),
      { numRuns: 300 },
    );
  });
});
