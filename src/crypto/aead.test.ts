/**
 * AEAD envelopes (D8), purpose keys (D7), key check (D6) and path HMAC (D9). Named after
 * the attack each test stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  AEAD_MIN_ENVELOPE_BYTES, Aead, CryptoError, PURPOSES, PathHasher, RootKey, aad, checkKeyCheck, derivePurposeKey,
  envelopeKeyId, makeKeyCheck,
} from './index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const key32 = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const fixedRoot = (): RootKey => RootKey.fromBytes(Uint8Array.from({ length: 32 }, (_, i) => i + 1));

function isDecryptFailed(e: unknown): boolean {
  return e instanceof CryptoError && e.code === 'crypto_decrypt_failed' && e.message === 'decryption failed';
}

test('AEAD: seal/open round trip; layout is version ‖ key id ‖ nonce ‖ ct ‖ tag; nonces are fresh', () => {
  const a = new Aead(key32(1), 0x01020304);
  const ad = aad('secret', 'rec-1', 3, 'data');
  const pt = enc('hello');
  const env = a.seal(pt, ad);
  assert.equal(env.length, 1 + 4 + 12 + pt.length + 16);
  assert.equal(hex(env.subarray(0, 5)), '0101020304');
  assert.equal(envelopeKeyId(env), 0x01020304);
  assert.deepEqual(a.open(env, ad), pt);
  assert.notEqual(hex(a.seal(pt, ad)), hex(env), 'random nonce per seal');
  assert.deepEqual(a.open(a.seal(new Uint8Array(0), ad), ad), new Uint8Array(0));
  const big = new Aead(key32(1), 0xffffffff);
  assert.equal(envelopeKeyId(big.seal(pt, ad)), 0xffffffff);
});

test('AEAD: wrong AAD, wrong key, wrong key id, bad version → the one typed error', () => {
  const a = new Aead(key32(1), 7);
  const ad = aad('secret', 'rec-1', 1, 'data');
  const env = a.seal(enc('s3cr3t-canary'), ad);
  const failures: unknown[] = [];
  const tryOpen = (x: Aead, e: Uint8Array, d: Uint8Array): void => {
    try {
      x.open(e, d);
      assert.fail('opened');
    } catch (err) {
      failures.push(err);
    }
  };
  tryOpen(a, env, aad('secret', 'rec-1', 1, 'meta'));
  tryOpen(a, env, aad('secret', 'rec-1', 2, 'data'));
  tryOpen(a, env, new Uint8Array(0));
  tryOpen(new Aead(key32(2), 7), env, ad);
  tryOpen(new Aead(key32(1), 8), env, ad); // same key, other key id
  const relabelled = Uint8Array.from(env);
  relabelled[4] = 8; // claims key id 8: fails for the key-8 holder, since the header is authenticated
  tryOpen(new Aead(key32(1), 8), relabelled, ad);
  const v2 = Uint8Array.from(env);
  v2[0] = 2;
  tryOpen(a, v2, ad);
  assert.equal(failures.length, 7);
  for (const f of failures) {
    assert.ok(isDecryptFailed(f));
    assert.ok(!String((f as Error).message).includes('canary'));
    assert.equal((f as Error).cause, undefined, 'no underlying OpenSSL error leaks through');
  }
});

test('AEAD: every truncation and every flipped bit (tag included) → the one typed error', () => {
  const a = new Aead(key32(3), 1);
  const ad = aad('policy', 'p-1', 1, 'body');
  const env = a.seal(enc('0123456789'), ad);
  for (let len = 0; len < env.length; len++) assert.throws(() => a.open(env.subarray(0, len), ad), isDecryptFailed);
  assert.throws(() => a.open(Uint8Array.from([...env, 0]), ad), isDecryptFailed);
  for (let bit = 0; bit < env.length * 8; bit++) {
    const bad = Uint8Array.from(env);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    assert.throws(() => a.open(bad, ad), isDecryptFailed);
  }
  assert.ok(env.length >= AEAD_MIN_ENVELOPE_BYTES);
});

test('AEAD (move/swap attack): records sealed for different record ids cannot be swapped', () => {
  const a = new Aead(key32(4), 1);
  const adA = aad('secret', 'path-hash-A', 1, 'data');
  const adB = aad('secret', 'path-hash-B', 1, 'data');
  const rowA = a.seal(enc('value of A'), adA);
  const rowB = a.seal(enc('value of B'), adB);
  assert.throws(() => a.open(rowB, adA), isDecryptFailed);
  assert.throws(() => a.open(rowA, adB), isDecryptFailed);
  assert.deepEqual(a.open(rowA, adA), enc('value of A'));
  // Same record, other version or field.
  assert.throws(() => a.open(rowA, aad('secret', 'path-hash-A', 2, 'data')), isDecryptFailed);
  assert.throws(() => a.open(rowA, aad('metadata', 'path-hash-A', 1, 'data')), isDecryptFailed);
});

test('AEAD: aad() encoding is unambiguous (parts cannot be re-split or retyped)', () => {
  const distinct = [
    aad('ab', 'c'), aad('a', 'bc'), aad('abc'), aad('1'), aad(1), aad(enc('1')), aad('a', 1), aad('a', '1'),
    aad(), aad(''), aad('', ''), aad(0), aad(-1), aad(2 ** 32),
  ].map(hex);
  assert.equal(new Set(distinct).size, distinct.length);
  assert.equal(hex(aad('k', 1)), '01' + '00000001' + '6b' + '03' + '0000000000000001');
  fc.assert(fc.property(fc.array(fc.string(), { maxLength: 4 }), fc.array(fc.string(), { maxLength: 4 }), (x, y) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) assert.notEqual(hex(aad(...x)), hex(aad(...y)));
  }), { numRuns: 200 });
  assert.throws(() => aad(1.5), CryptoError);
  assert.throws(() => aad(2 ** 53), CryptoError);
});

test('AEAD: bad keys and destroyed keys are refused', () => {
  assert.throws(() => new Aead(new Uint8Array(16), 1), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_bad_key');
  assert.throws(() => new Aead(key32(1), -1), CryptoError);
  assert.throws(() => new Aead(key32(1), 2 ** 32), CryptoError);
  const k = key32(5);
  const a = new Aead(k, 1);
  k.fill(9); // the Aead holds its own copy
  const env = a.seal(enc('x'), aad('t'));
  assert.deepEqual(new Aead(key32(5), 1).open(env, aad('t')), enc('x'));
  a.destroy();
  assert.throws(() => a.seal(enc('x'), aad('t')), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_key_destroyed');
  assert.equal(JSON.stringify({ a }), '{"a":"[Aead]"}');
});

test('D7: purpose keys are HKDF-SHA-256(root, salt "spike-ts/root-key", info label) and all distinct', () => {
  const root = fixedRoot();
  const rb = root.bytes();
  const seen = new Set<string>([hex(rb)]);
  for (const p of PURPOSES) {
    const k = derivePurposeKey(root, p);
    assert.equal(k.length, 32);
    // Independent implementation (@noble/hashes) pins the derivation.
    assert.equal(hex(k), hex(hkdf(sha256, rb, enc('spike-ts/root-key'), enc(p), 32)));
    assert.equal(hex(derivePurposeKey(root, p)), hex(k), 'deterministic');
    seen.add(hex(k));
  }
  assert.equal(seen.size, PURPOSES.length + 1, 'no purpose key equals another or the scalar itself');
  assert.throws(() => derivePurposeKey(root, 'other/v1' as never), CryptoError);
});

test('D7: storage and cipher keys are separate — a storage envelope does not open under the cipher key', () => {
  const root = RootKey.generate();
  const s = derivePurposeKey(root, 'storage/v1');
  const c = derivePurposeKey(root, 'cipher/v1');
  const ad = aad('x');
  const env = new Aead(s, 1).seal(enc('row'), ad);
  assert.throws(() => new Aead(c, 1).open(env, ad), isDecryptFailed);
});

test('D6 key check: opens under the right key only; tampered or garbage records are false', () => {
  const root = RootKey.generate();
  const rec = makeKeyCheck(root);
  assert.equal(checkKeyCheck(root, rec), true);
  assert.equal(checkKeyCheck(RootKey.fromBytes(root.bytes()), rec), true);
  assert.equal(checkKeyCheck(RootKey.generate(), rec), false);
  const bad = Uint8Array.from(rec);
  bad[bad.length - 3]! ^= 4;
  assert.equal(checkKeyCheck(root, bad), false);
  assert.equal(checkKeyCheck(root, new Uint8Array(0)), false);
  // A record for another key id or any other envelope under the kcv key is not a key check.
  const kcvKey = derivePurposeKey(root, 'kcv/v1');
  assert.equal(checkKeyCheck(root, new Aead(kcvKey, 1).seal(enc('not the label'), aad('kcv', 'root-key', 1))), false);
  assert.equal(checkKeyCheck(root, new Aead(kcvKey, 2).seal(enc('spike-ts key check v1'), aad('kcv', 'root-key', 1))), false);
  assert.equal(checkKeyCheck(root, new Aead(kcvKey, 1).seal(enc('spike-ts key check v1'), aad('kcv', 'root-key', 1))), true);
});

test('D9 path HMAC: HMAC-SHA-256 under path-hmac/v1, stable per key, different across keys', () => {
  const root = fixedRoot();
  const ph = new PathHasher(root);
  const k = derivePurposeKey(root, 'path-hmac/v1');
  const got = ph.hash('secrets/db/password');
  assert.equal(got.length, 32);
  assert.equal(hex(got), createHmac('sha256', k).update('secrets/db/password').digest('hex'));
  assert.equal(hex(ph.hash('secrets/db/password')), hex(got));
  assert.notEqual(hex(ph.hash('secrets/db/passwore')), hex(got));
  assert.notEqual(hex(new PathHasher(RootKey.generate()).hash('secrets/db/password')), hex(got));
  ph.destroy();
  assert.throws(() => ph.hash('x'), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_key_destroyed');
});

test('RootKey: strict fromBytes (length, zero, ≥ n), copies in and out, constant-time equals, no leaks via JSON/inspect', async () => {
  const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
  const nMinus1 = Uint8Array.from(n);
  nMinus1[31]! -= 1;
  for (const bad of [new Uint8Array(0), new Uint8Array(31).fill(1), new Uint8Array(33).fill(1), new Uint8Array(32), n, new Uint8Array(32).fill(0xff)]) {
    assert.throws(() => RootKey.fromBytes(bad), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_bad_key');
  }
  assert.equal(hex(RootKey.fromBytes(nMinus1).bytes()), hex(nMinus1));
  const input = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
  const k = RootKey.fromBytes(input);
  input.fill(0);
  assert.equal(hex(k.bytes()), '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');
  assert.ok(k.equals(fixedRoot()));
  assert.ok(!k.equals(RootKey.generate()));
  const { inspect } = await import('node:util');
  assert.equal(inspect(k), '[RootKey]');
  assert.equal(JSON.stringify({ k }), '{"k":"[RootKey]"}');
  for (let i = 0; i < 20; i++) {
    const g = RootKey.generate().bytes();
    assert.equal(g.length, 32);
    assert.ok(Buffer.compare(Buffer.from(g), n) < 0 && g.some((b) => b !== 0));
  }
});
