/**
 * Known-answer tests through the project's own wrappers: HKDF-SHA-256 (`hkdfSha256`, the
 * function `derivePurposeKey` uses) against RFC 5869 test cases 1–3, and AES-256-GCM
 * (`gcmSeal`/`gcmOpen`, the functions `Aead` uses) against the GCM specification's test
 * cases 13–16 (McGrew & Viega, "The Galois/Counter Mode of Operation", the 256-bit-key
 * cases also used by NIST CAVP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoError, gcmOpen, gcmSeal, hkdfSha256 } from './index.js';

const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const range = (from: number, to: number): Uint8Array => Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('KAT: HKDF-SHA-256, RFC 5869 A.1 (basic)', () => {
  const okm = hkdfSha256(new Uint8Array(22).fill(0x0b), range(0x00, 0x0c), range(0xf0, 0xf9), 42);
  assert.equal(hex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
});

test('KAT: HKDF-SHA-256, RFC 5869 A.2 (long inputs)', () => {
  const okm = hkdfSha256(range(0x00, 0x4f), range(0x60, 0xaf), range(0xb0, 0xff), 82);
  assert.equal(hex(okm),
    'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c' +
    '59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71' +
    'cc30c58179ec3e87c14c01d5c1f3434f1d87');
});

test('KAT: HKDF-SHA-256, RFC 5869 A.3 (empty salt and info)', () => {
  const okm = hkdfSha256(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42);
  assert.equal(hex(okm), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
});

test('KAT: HKDF rejects lengths outside 1..255·32', () => {
  for (const len of [0, 255 * 32 + 1, 1.5]) {
    assert.throws(() => hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), len), CryptoError);
  }
});

interface GcmCase { name: string; key: string; iv: string; pt: string; aad: string; ct: string; tag: string }

const K15 = 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308';
const P15 = `d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255`;
const C15 = `522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad`;
const GCM: GcmCase[] = [
  { name: '13', key: '00'.repeat(32), iv: '00'.repeat(12), pt: '', aad: '', ct: '', tag: '530f8afbc74536b9a963b4f1c4cb738b' },
  { name: '14', key: '00'.repeat(32), iv: '00'.repeat(12), pt: '00'.repeat(16), aad: '', ct: 'cea7403d4d606b6e074ec5d3baf39d18', tag: 'd0d1c8a799996bf0265b98b5d48ab919' },
  { name: '15', key: K15, iv: 'cafebabefacedbaddecaf888', pt: P15, aad: '', ct: C15, tag: 'b094dac5d93471bdec1a502270e3cc6c' },
  {
    name: '16', key: K15, iv: 'cafebabefacedbaddecaf888', pt: P15.replace(/\s+/g, '').slice(0, 120),
    aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2', ct: C15.replace(/\s+/g, '').slice(0, 120), tag: '76fc6ece0f4e1768cddf8853bb2d551b',
  },
];

for (const c of GCM) {
  test(`KAT: AES-256-GCM, GCM spec test case ${c.name} (seal and open)`, () => {
    const sealed = gcmSeal(h(c.key), h(c.iv), h(c.pt), h(c.aad));
    assert.equal(hex(sealed), h(c.ct).length ? hex(h(c.ct)) + c.tag : c.tag);
    assert.equal(hex(gcmOpen(h(c.key), h(c.iv), sealed, h(c.aad))), hex(h(c.pt)));
    const bad = Uint8Array.from(sealed);
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => gcmOpen(h(c.key), h(c.iv), bad, h(c.aad)), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_decrypt_failed');
  });
}
