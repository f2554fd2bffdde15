import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { createCa, createIntermediate, issueLeaf, KeyUsage, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { makeX509Svid, parseX509Svid, svidChainDer, svidChainPem, svidPrivateKeyPem } from './svid.js';
import { createSecureContext } from 'node:tls';
import { SvidVerificationError, type SvidErrorCode } from './verify.js';

let ca: TestCa;
let im: TestCa;
const ID = 'spiffe://td1.test/workload';

before(async () => {
  ca = await createCa('td1.test');
  im = await createIntermediate(ca);
});

function fails(fn: () => unknown, code: SvidErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof SvidVerificationError && e.code === code);
}

test('parseX509Svid reads concatenated DER (leaf first) and PKCS#8 DER', async () => {
  const leaf = await issueLeaf(im, { uris: [ID] });
  const svid = parseX509Svid(Buffer.concat([leaf.der, im.der]), leaf.keyPkcs8, 'internal');
  assert.equal(svid.id.toString(), ID);
  assert.equal(svid.certificates.length, 2);
  assert.ok(svid.certificates[0]?.raw.equals(leaf.der));
  assert.ok(svid.certificates[1]?.raw.equals(im.der));
  assert.equal(svid.hint, 'internal');
  assert.equal(svid.notAfter.getTime(), leaf.x509.notAfter.getTime());
  assert.equal(svid.privateKey.type, 'private');
  assert.deepEqual(svidChainDer(svid), [leaf.der, im.der]);
  assert.equal((svidChainPem(svid).match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.ok(Object.isFrozen(svid));
});

test('parseX509Svid omits an empty hint', async () => {
  const leaf = await issueLeaf(ca, { uris: [ID] });
  assert.equal('hint' in parseX509Svid(leaf.der, leaf.keyPkcs8, ''), false);
});

test('parseX509Svid rejects an empty or garbled chain', async () => {
  const leaf = await issueLeaf(ca, { uris: [ID] });
  fails(() => parseX509Svid(new Uint8Array(0), leaf.keyPkcs8), 'svid_empty_chain');
  fails(() => parseX509Svid(Buffer.from(leaf.pem), leaf.keyPkcs8), 'svid_malformed');
  fails(() => parseX509Svid(Buffer.concat([leaf.der, Buffer.from([0x30, 0x01])]), leaf.keyPkcs8), 'svid_malformed');
});

test('parseX509Svid rejects a key that does not match the leaf', async () => {
  const leaf = await issueLeaf(ca, { uris: [ID] });
  const other = await issueLeaf(ca, { uris: [ID] });
  fails(() => parseX509Svid(leaf.der, other.keyPkcs8), 'svid_key_mismatch');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'der', type: 'pkcs8' });
  fails(() => parseX509Svid(leaf.der, rsa), 'svid_key_mismatch');
});

test('parseX509Svid rejects a malformed key without echoing it', async () => {
  const leaf = await issueLeaf(ca, { uris: [ID] });
  assert.throws(
    () => parseX509Svid(leaf.der, Buffer.from('secret-key-bytes')),
    (e: unknown) => e instanceof SvidVerificationError && e.code === 'svid_key_malformed' && e.cause === undefined && !e.message.includes('secret'),
  );
});

test('own-SVID rules: leaf must have digitalSignature', async () => {
  const leaf = await issueLeaf(ca, { uris: [ID], keyUsages: KeyUsage.keyAgreement });
  fails(() => parseX509Svid(leaf.der, leaf.keyPkcs8), 'svid_leaf_no_digital_signature');
});

test('own-SVID rules: leaf must not be a CA nor have keyCertSign/cRLSign, and needs one SPIFFE URI', async () => {
  const a = await issueLeaf(ca, { uris: [ID], isCA: true });
  fails(() => parseX509Svid(a.der, a.keyPkcs8), 'svid_leaf_is_ca');
  const b = await issueLeaf(ca, { uris: [ID], keyUsages: KeyUsage.digitalSignature | KeyUsage.cRLSign });
  fails(() => parseX509Svid(b.der, b.keyPkcs8), 'svid_leaf_crl_sign');
  const c = await issueLeaf(ca, { uris: [ID, ID + '2'] });
  fails(() => parseX509Svid(c.der, c.keyPkcs8), 'svid_multiple_uri_sans');
  const d = await issueLeaf(ca, { uris: ['https://td1.test/x'] });
  fails(() => parseX509Svid(d.der, d.keyPkcs8), 'svid_bad_spiffe_id');
});

test('own-SVID rules: signing certificates must be CAs with keyCertSign', async () => {
  const notCa = await createIntermediate(ca, { isCA: false });
  const l1 = await issueLeaf(notCa, { uris: [ID] });
  fails(() => parseX509Svid(Buffer.concat([l1.der, notCa.der]), l1.keyPkcs8), 'svid_intermediate_not_ca');
  const noKcs = await createIntermediate(ca, { keyUsages: KeyUsage.digitalSignature });
  const l2 = await issueLeaf(noKcs, { uris: [ID] });
  fails(() => parseX509Svid(Buffer.concat([l2.der, noKcs.der]), l2.keyPkcs8), 'svid_intermediate_no_key_cert_sign');
  const noKu = await createIntermediate(ca, { keyUsages: null });
  const l3 = await issueLeaf(noKu, { uris: [ID] });
  fails(() => parseX509Svid(Buffer.concat([l3.der, noKu.der]), l3.keyPkcs8), 'svid_intermediate_no_key_cert_sign');
});

test('makeSvid helper builds a chain with the CA intermediates', async () => {
  const svid = await makeSvid(im, ID);
  assert.equal(svid.certificates.length, 2);
  assert.equal(svid.id.toString(), ID);
  const again = makeX509Svid(svid.certificates, svid.privateKey);
  assert.ok(again.id.equals(svid.id));
});

test('svidPrivateKeyPem is a PEM Buffer usable by TLS and equal to the key', async () => {
  const svid = await makeSvid(ca, ID);
  const pem = svidPrivateKeyPem(svid);
  assert.ok(Buffer.isBuffer(pem));
  const back = createPrivateKey(pem);
  assert.ok(back.equals(svid.privateKey));
  createSecureContext({ key: pem, cert: svidChainPem(svid) });
  pem.fill(0);
});
