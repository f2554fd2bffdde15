/**
 * Differential test for the narrow certificate schema (./certschema.ts): for generated
 * certificates that OpenSSL (node:crypto X509Certificate) accepts — v1/v2/v3, explicit default
 * version, issuer/subject unique IDs, varied extensions with critical flags, duplicates, BER
 * forms inside TBSCertificate — the facts read through `CertificateFacts` with
 * `parseEmbedded: false` equal those read through asn1-x509's full `Certificate` schema with
 * asn1js defaults (the schema used before), and both agree with what OpenSSL reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync, randomInt, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints, Certificate, KeyUsage, SubjectAlternativeName, id_ce_basicConstraints, id_ce_keyUsage, id_ce_subjectAltName,
} from '@peculiar/asn1-x509';
import { CertificateFacts } from './certschema.js';
import { certFactsFromDer } from './certfacts.js';

// --- minimal DER/BER writer -------------------------------------------------------------
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const b: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  return Buffer.from([0x80 | b.length, ...b]);
}
function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
/** Long-form length with a leading zero byte (BER, not DER). */
function tlvLong(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag, 0x83, 0, body.length >> 8, body.length & 0xff]), body]);
}
/** Indefinite-length form (BER) for a constructed tag. */
function tlvIndef(tag: number, ...parts: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([tag, 0x80]), ...parts, Buffer.from([0, 0])]);
}
const seq = (...p: Buffer[]): Buffer => tlv(0x30, ...p);
function int(n: number): Buffer {
  const b: number[] = [];
  for (let v = n; ; v = Math.floor(v / 256)) { b.unshift(v & 0xff); if (v < 128) break; }
  if ((b[0] as number) & 0x80) b.unshift(0);
  return tlv(0x02, Buffer.from(b));
}
const oid = (hex: string): Buffer => tlv(0x06, Buffer.from(hex, 'hex'));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (unused: number, b: Buffer): Buffer => tlv(0x03, Buffer.from([unused]), b);

const ECDSA_SHA256 = seq(oid('2a8648ce3d040302'));
const OID_BC = oid('551d13');
const OID_KU = oid('551d0f');
const OID_SAN = oid('551d11');
const OID_UNKNOWN = oid('2b0601040182e30901'); // private arc, not understood by anyone

function name(cn: string): Buffer {
  return seq(tlv(0x31, seq(oid('550403'), tlv(0x0c, Buffer.from(cn)))));
}
function utc(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s));
}
function gen(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return tlv(0x18, Buffer.from(s));
}

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SPKI = publicKey.export({ format: 'der', type: 'spki' });

function pick<T>(xs: readonly T[]): T {
  return xs[randomInt(xs.length)] as T;
}

interface Shape { label: string; der: Buffer }

function extension(oidTlv: Buffer, value: Buffer, critical: 'absent' | 'true' | 'false'): Buffer {
  const crit = critical === 'absent' ? [] : [bool(critical === 'true')];
  return seq(oidTlv, ...crit, octets(value));
}

function randomExtensions(): { exts: Buffer[]; note: string } {
  const exts: Buffer[] = [];
  const notes: string[] = [];
  const crit = (): 'absent' | 'true' | 'false' => pick(['absent', 'true', 'false'] as const);
  if (randomInt(3) > 0) {
    const ca = randomInt(2) === 0;
    const body: Buffer[] = [];
    if (ca || randomInt(4) === 0) body.push(bool(ca));
    if (randomInt(2) === 0) body.push(int(randomInt(5)));
    exts.push(extension(OID_BC, seq(...body), crit()));
    notes.push(`bc(ca=${ca})`);
  }
  if (randomInt(3) > 0) {
    const v = randomInt(1, 512);
    const hi = v >> 1 & 0xff;
    const b = v & 0x100 ? bits(7, Buffer.from([hi, 0x80])) : bits(0, Buffer.from([hi]));
    exts.push(extension(OID_KU, b, crit()));
    notes.push('ku');
  }
  if (randomInt(3) > 0) {
    const n = randomInt(0, 3);
    const gns: Buffer[] = [];
    for (let i = 0; i < n; i++) gns.push(tlv(0x86, Buffer.from(`spiffe://td.test/w${randomInt(1000)}`)));
    if (randomInt(2) === 0) gns.push(tlv(0x82, Buffer.from('dns.test')));
    if (gns.length > 0) { exts.push(extension(OID_SAN, seq(...gns), crit())); notes.push(`san(${n})`); }
  }
  if (randomInt(3) === 0) { exts.push(extension(OID_UNKNOWN, seq(int(1)), 'absent')); notes.push('unknown'); }
  if (exts.length > 0 && randomInt(6) === 0) { exts.push(exts[randomInt(exts.length)] as Buffer); notes.push('dup'); }
  // shuffle
  for (let i = exts.length - 1; i > 0; i--) { const j = randomInt(i + 1); [exts[i], exts[j]] = [exts[j] as Buffer, exts[i] as Buffer]; }
  return { exts, note: notes.join(',') };
}

function randomCert(): Shape {
  const parts: Buffer[] = [];
  const labels: string[] = [];
  const v = pick(['absent', 'v1explicit', 'v2', 'v3'] as const);
  labels.push(v);
  if (v === 'v1explicit') parts.push(tlv(0xa0, int(0)));
  if (v === 'v2') parts.push(tlv(0xa0, int(1)));
  if (v === 'v3') parts.push(tlv(0xa0, int(2)));
  parts.push(int(randomInt(1, 30000)), ECDSA_SHA256, name(`iss${randomInt(9)}`));
  const nb = new Date(Date.UTC(2020 + randomInt(40), randomInt(12), 1 + randomInt(28), randomInt(24), randomInt(60), randomInt(60)));
  const na = new Date(nb.getTime() + randomInt(1, 10 ** 10));
  const timeOf = (d: Date): Buffer => (d.getUTCFullYear() >= 2050 ? gen(d) : pick([utc, gen])(d));
  const berValidity = randomInt(4) === 0;
  if (berValidity) labels.push('validity-indef');
  parts.push((berValidity ? tlvIndef : tlv)(0x30, timeOf(nb), timeOf(na)), name(`sub${randomInt(9)}`), SPKI);
  const uid = (): Buffer => Buffer.from([randomInt(256), randomInt(256)]);
  const indef = randomInt(4) === 0;
  const longLen = !indef && randomInt(4) === 0;
  if (randomInt(3) === 0) { parts.push(tlv(0x81, Buffer.from([0]), uid())); labels.push('iuid'); }
  if (randomInt(3) === 0) { parts.push(tlv(0x82, Buffer.from([0]), uid())); labels.push('suid'); }
  const { exts, note } = randomExtensions();
  if (exts.length > 0 && randomInt(5) > 0) {
    parts.push(indef ? tlvIndef(0xa3, tlvIndef(0x30, ...exts)) : longLen ? tlvLong(0xa3, tlvLong(0x30, ...exts)) : tlv(0xa3, seq(...exts)));
    labels.push(`ext[${note}]${indef ? 'indef' : longLen ? 'long' : ''}`);
  }
  const tbs = seq(...parts);
  const sig = createSign('sha256').update(tbs).sign(privateKey);
  return { label: labels.join(' '), der: seq(tbs, ECDSA_SHA256, bits(0, sig)) };
}

// --- the schema used before 9e06feb (asn1-x509 Certificate, asn1js defaults) -------------
// certfacts.ts derives the facts from these fields with code that 9e06feb did not change, so
// equal fields mean equal facts; extension values are compared decoded both ways too.
interface View { version: number; notBefore: number; notAfter: number; uids: string[]; exts: string[] }
const hex = (b: ArrayBuffer | undefined): string => (b === undefined ? '-' : Buffer.from(b).toString('hex'));

function extView(id: string, critical: boolean, value: ArrayBuffer, embedded: boolean): string {
  const opts = embedded ? undefined : { berOptions: { parseEmbedded: false } };
  let decoded: unknown = hex(value);
  if (id === id_ce_basicConstraints) decoded = outcome(() => ({ ...AsnConvert.parse(value, BasicConstraints, opts) }));
  if (id === id_ce_keyUsage) decoded = outcome(() => AsnConvert.parse(value, KeyUsage, opts).toNumber());
  if (id === id_ce_subjectAltName) decoded = outcome(() => AsnConvert.parse(value, SubjectAlternativeName, opts).map((n) => n.uniformResourceIdentifier ?? '-'));
  return JSON.stringify([id, critical, decoded]);
}

function oldView(der: Uint8Array): View {
  const t = AsnConvert.parse(der, Certificate).tbsCertificate;
  return {
    version: t.version, notBefore: t.validity.notBefore.getTime().getTime(), notAfter: t.validity.notAfter.getTime().getTime(),
    uids: [hex(t.issuerUniqueID), hex(t.subjectUniqueID)],
    exts: (t.extensions ?? []).map((e) => extView(e.extnID, e.critical, e.extnValue.buffer, true)),
  };
}

function newView(der: Uint8Array): View {
  const t = AsnConvert.parse(der, CertificateFacts, { berOptions: { parseEmbedded: false } }).tbsCertificate;
  return {
    version: t.version, notBefore: t.validity.notBefore.getTime().getTime(), notAfter: t.validity.notAfter.getTime().getTime(),
    uids: [hex(t.issuerUniqueID), hex(t.subjectUniqueID)],
    exts: (t.extensions ?? []).map((e) => extView(e.extnID, e.critical, e.extnValue.buffer, false)),
  };
}

function outcome<T>(fn: () => T): { ok: true; value: T } | { ok: false } {
  try { return { ok: true, value: fn() }; } catch { return { ok: false }; }
}

test('CertificateFacts (parseEmbedded: false) and asn1-x509 Certificate read the same facts from 600 generated certificates', () => {
  let accepted = 0;
  let uids = 0;
  let berInTbs = 0;
  let ber = 0;
  for (let i = 0; i < 600; i++) {
    const { label, der } = randomCert();
    let node: X509Certificate;
    try { node = new X509Certificate(der); } catch { continue; } // OpenSSL refuses: never reaches extract
    accepted++;
    if (/uid/.test(label)) uids++;
    if (/indef|long/.test(label)) berInTbs++;
    const oldR = outcome(() => oldView(node.raw));
    const newR = outcome(() => newView(node.raw));
    assert.deepEqual(newR, oldR, `${label}: ${der.toString('hex')}`);
    assert.equal(newR.ok, true, `${label}: new schema refused a certificate OpenSSL accepts`);
    if (!node.raw.equals(der)) { ber++; continue; } // certFactsFromDer refuses it
    const f = certFactsFromDer(der);
    assert.equal(f, certFactsFromDer(der));
    {
      // the facts also agree with OpenSSL's own reading
      assert.equal(f.notBefore.getTime(), Date.parse(node.validFrom), label);
      assert.equal(f.notAfter.getTime(), Date.parse(node.validTo), label);
      const sanUris = (node.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
      if (!f.duplicateExtensions) assert.deepEqual(f.uris, sanUris, label);
    }
  }
  if (process.env.CERTSCHEMA_DEBUG) console.log({ accepted, uids, ber, berInTbs });
  assert.ok(accepted >= 300, `only ${accepted} certificates accepted by OpenSSL`);
  assert.ok(uids >= 50, `only ${uids} with unique IDs`);
  assert.ok(berInTbs >= 50, `only ${berInTbs} with BER inside TBSCertificate`);
});

test('unique IDs [1]/[2] before the extensions do not hide or shift the extensions', () => {
  for (const uidTags of [[0x81], [0x82], [0x81, 0x82]]) {
    const tbs = seq(
      tlv(0xa0, int(2)), int(7), ECDSA_SHA256, name('i'), seq(utc(new Date('2025-01-01T00:00:00Z')), utc(new Date('2035-01-01T00:00:00Z'))), name('s'), SPKI,
      ...uidTags.map((t) => tlv(t, Buffer.from([0]), Buffer.from('a3'.repeat(8), 'hex'))), // contents look like an [3] tag
      tlv(0xa3, seq(extension(OID_BC, seq(bool(true), int(1)), 'true'), extension(OID_SAN, seq(tlv(0x86, Buffer.from('spiffe://td.test/x'))), 'absent'))),
    );
    const der = seq(tbs, ECDSA_SHA256, bits(0, createSign('sha256').update(tbs).sign(privateKey)));
    const node = new X509Certificate(der);
    assert.equal(node.ca, true);
    const f = certFactsFromDer(der);
    assert.deepEqual([f.isCA, f.pathLen, [...f.uris]], [true, 1, ['spiffe://td.test/x']]);
    const cert = AsnConvert.parse(der, CertificateFacts);
    assert.equal(cert.tbsCertificate.issuerUniqueID !== undefined, uidTags.includes(0x81));
    assert.equal(cert.tbsCertificate.subjectUniqueID !== undefined, uidTags.includes(0x82));
  }
});

function caCert(pathLen: Buffer): Buffer {
  const tbs = seq(
    tlv(0xa0, int(2)), int(9), ECDSA_SHA256, name('root'), seq(utc(new Date('2025-01-01T00:00:00Z')), utc(new Date('2035-01-01T00:00:00Z'))), name('ca'), SPKI,
    tlv(0xa3, seq(extension(OID_BC, seq(bool(true), tlv(0x02, pathLen)), 'true'), extension(OID_KU, bits(1, Buffer.from([0x06])), 'true'))),
  );
  return seq(tbs, ECDSA_SHA256, bits(0, createSign('sha256').update(tbs).sign(privateKey)));
}

test('a negative pathLenConstraint makes the certificate unreadable, as OpenSSL marks it invalid (not an unlimited CA)', () => {
  for (const neg of ['ff', '80', 'ff7f', '80000000', 'ffffffff', '8000000000']) {
    const der = caCert(Buffer.from(neg, 'hex'));
    assert.equal(new X509Certificate(der).ca, false, `OpenSSL: pathLen ${neg} is not a CA`);
    assert.throws(() => certFactsFromDer(der), /pathLenConstraint/, `pathLen ${neg}`);
  }
  for (const [pos, want] of [['00', 0], ['03', 3], ['7fffff', 0x7fffff], ['01000000', undefined]] as const) {
    const der = caCert(Buffer.from(pos, 'hex'));
    assert.equal(new X509Certificate(der).ca, true, `OpenSSL: pathLen ${pos} is a CA`);
    const f = certFactsFromDer(der);
    assert.deepEqual([f.isCA, f.pathLen], [true, want], `pathLen ${pos}`); // 2^24 and up: no practical limit
  }
});

test('validity that OpenSSL reads differently or not at all makes the certificate unreadable', () => {
  const withNotBefore = (tag: number, s: string): Buffer => {
    const tbs = seq(tlv(0xa0, int(2)), int(5), ECDSA_SHA256, name('i'), seq(tlv(tag, Buffer.from(s)), utc(new Date('2035-01-01T00:00:00Z'))), name('s'), SPKI);
    return seq(tbs, ECDSA_SHA256, bits(0, createSign('sha256').update(tbs).sign(privateKey)));
  };
  // asn1js read these as 1899-11-30, 1899-11-30, 2025-01-06, 2026-01-01, 2025-03-02, 2025-01-02
  for (const [tag, s] of [[0x17, '2601010000Z'], [0x17, '260101000000+0100'], [0x18, '20260101000000'], [0x17, '261301000000Z'], [0x17, '260230000000Z'], [0x17, '260101246000Z']] as const) {
    assert.throws(() => certFactsFromDer(withNotBefore(tag, s)), /validity/, s);
  }
  for (const [tag, s, iso] of [[0x17, '260101000000Z', '2026-01-01T00:00:00Z'], [0x18, '20260101000000Z', '2026-01-01T00:00:00Z'], [0x17, '500101000000Z', '1950-01-01T00:00:00Z'], [0x18, '99991231235959Z', '9999-12-31T23:59:59Z']] as const) {
    assert.equal(certFactsFromDer(withNotBefore(tag, s)).notBefore.getTime(), Date.parse(iso), s);
  }
});
