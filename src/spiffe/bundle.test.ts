import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCa, type TestCa } from '../../test/helpers/pki.js';
import { BundleError, X509Bundle, X509BundleSet, parseConcatenatedDer } from './bundle.js';
import { TrustDomain } from './id.js';

const td1 = TrustDomain.parse('td1.test');
const td2 = TrustDomain.parse('td2.test');
let a: TestCa;
let b: TestCa;
let c: TestCa;

before(async () => {
  a = await createCa(td1);
  b = await createCa(td1);
  c = await createCa(td2);
});

test('X509Bundle round-trips through concatenated DER and PEM', () => {
  const bundle = new X509Bundle(td1, [a.cert, b.cert]);
  const fromDer = X509Bundle.fromDer(td1, bundle.toDer());
  assert.deepEqual(fromDer.authorities.map((x) => x.fingerprint256), [a.cert.fingerprint256, b.cert.fingerprint256]);
  const fromPem = X509Bundle.fromPem(td1, bundle.toPem());
  assert.ok(fromPem.toDer().equals(bundle.toDer()));
  assert.ok(bundle.toDer().equals(Buffer.concat([a.der, b.der])));
  assert.ok(bundle.hasAuthority(a.cert));
  assert.ok(!bundle.hasAuthority(c.cert));
  assert.equal(bundle.withAuthorities([c.cert]).authorities.length, 1);
});

test('X509Bundle de-duplicates authorities and is immutable', () => {
  const bundle = new X509Bundle(td1, [a.cert, a.cert, b.cert]);
  assert.equal(bundle.authorities.length, 2);
  assert.ok(Object.isFrozen(bundle.authorities));
});

test('X509Bundle.fromDer rejects garbage, PEM and truncated data', () => {
  assert.throws(() => X509Bundle.fromDer(td1, Buffer.from('hello')), BundleError);
  assert.throws(() => X509Bundle.fromDer(td1, Buffer.from(a.pem)), BundleError);
  assert.throws(() => X509Bundle.fromDer(td1, a.der.subarray(0, a.der.length - 3)), BundleError);
  assert.throws(() => X509Bundle.fromDer(td1, Buffer.concat([a.der, Buffer.from([0x30])])), BundleError);
  assert.equal(X509Bundle.fromDer(td1, new Uint8Array(0)).authorities.length, 0);
});

test('parseConcatenatedDer honours byteOffset of a Uint8Array view and a count limit', () => {
  const backing = Buffer.concat([Buffer.from([1, 2, 3]), a.der, c.der]);
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, a.der.length + c.der.length);
  assert.equal(parseConcatenatedDer(view).length, 2);
  assert.throws(() => parseConcatenatedDer(Buffer.concat([a.der, a.der, a.der]), 2), (e: unknown) => e instanceof BundleError && e.code === 'cert_too_many');
});

test('X509Bundle.fromPem ignores non-certificate blocks', () => {
  const text = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' + a.pem + 'junk\n' + c.pem;
  assert.equal(X509Bundle.fromPem(td1, text).authorities.length, 2);
});

test('X509BundleSet keeps one bundle per trust domain', () => {
  const set = new X509BundleSet([new X509Bundle(td1, [a.cert])]);
  assert.equal(set.getX509BundleForTrustDomain(td1)?.authorities.length, 1);
  set.set(new X509Bundle(td1, [a.cert, b.cert]));
  set.set(new X509Bundle(td2, [c.cert]));
  assert.equal(set.size, 2);
  assert.equal(set.get(TrustDomain.parse('spiffe://td1.test'))?.authorities.length, 2);
  assert.deepEqual(set.bundles().map((x) => x.trustDomain.name), ['td1.test', 'td2.test']);
  assert.equal(set.allAuthorities().length, 3);
  const copy = set.clone();
  set.delete(td1);
  assert.equal(set.get(td1), undefined);
  assert.ok(!set.has(td1));
  assert.equal(copy.size, 2);
});
