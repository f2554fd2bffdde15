/**
 * The facts about one X.509 certificate that SVID rules need (CA flag, key usage, URI SANs,
 * validity), read from DER with the X.509 ASN.1 schemas of @peculiar/asn1-x509 (the parser
 * under @peculiar/x509) — never from Node's parsed SAN text string — and paired with the
 * `node:crypto` X509Certificate used for signature checks. The schema package is used
 * directly, not through @peculiar/x509, because loading the latter (CMS, CSR, PKCS#9 schemas,
 * a DI container) costs the CLI more start-up time than all its other dependencies together.
 * The certificate is decoded through `CertificateFacts` (./certschema.ts): asn1-x509's own
 * types for version, validity and extensions, the other fields matched but left undecoded;
 * the extension values are decoded with asn1-x509's BasicConstraints, KeyUsage and
 * SubjectAlternativeName, as before.
 *
 * Parsing is slow (tens of microseconds to milliseconds), so results are
 * kept in a small bounded cache keyed by the SHA-256 of the DER bytes (certificates are
 * public; only immutable facts are cached — time checks are always redone by the caller).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateFacts } from './certschema.js';
import {
  BasicConstraints, KeyUsage, KeyUsageFlags, SubjectAlternativeName, id_ce_basicConstraints, id_ce_keyUsage, id_ce_subjectAltName,
} from '@peculiar/asn1-x509';

/** Immutable facts about one certificate. */
export interface CertFacts {
  readonly node: X509Certificate;
  /** Basic constraints present with cA = TRUE. */
  readonly isCA: boolean;
  /** pathLenConstraint of a CA, if any. */
  readonly pathLen: number | undefined;
  /** Key usage bit flags (KeyUsageFlags), or undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  /** Every URI SAN, in certificate order (values exactly as encoded). */
  readonly uris: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Subject equals issuer (self-issued, RFC 5280 §6.1). */
  readonly selfIssued: boolean;
  /** Some extension OID appears more than once (RFC 5280 §4.2 forbids it). */
  readonly duplicateExtensions: boolean;
  /** OIDs of the extensions marked critical (the verifier decides which it can accept). */
  readonly criticalExtensions: readonly string[];
}

export const KU_DIGITAL_SIGNATURE = KeyUsageFlags.digitalSignature;
export const KU_KEY_CERT_SIGN = KeyUsageFlags.keyCertSign;
export const KU_CRL_SIGN = KeyUsageFlags.cRLSign;

const CACHE_MAX = 512;
const cache = new Map<string, CertFacts>();
const authorityCache = new WeakMap<X509Certificate, CertFacts>();

/**
 * asn1js by default also tries to decode the bytes inside every OCTET STRING and BIT STRING as
 * ASN.1 (extension values, the signature, the public key) and keeps what it finds beside the
 * bytes; the schemas here read only the bytes (each extension value is then parsed with its own
 * schema), so that guess is skipped. It never made a certificate fail: a failed guess is ignored.
 */
const PARSE = { berOptions: { parseEmbedded: false } } as const;

function extract(node: X509Certificate, der: Uint8Array): CertFacts {
  const cert = AsnConvert.parse(der, CertificateFacts, PARSE);
  const exts = cert.tbsCertificate.extensions ?? [];
  const seen = new Set<string>();
  let duplicateExtensions = false;
  const criticalExtensions: string[] = [];
  for (const e of exts) {
    if (seen.has(e.extnID)) duplicateExtensions = true;
    seen.add(e.extnID);
    if (e.critical) criticalExtensions.push(e.extnID);
  }
  let isCA = false;
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  const uris: string[] = [];
  for (const e of exts) {
    const value = e.extnValue.buffer;
    if (e.extnID === id_ce_basicConstraints) {
      const bc = AsnConvert.parse(value, BasicConstraints, PARSE);
      isCA = isCA || bc.cA === true;
      // asn1-schema gives a number below 4 bytes and a decimal string from 4 bytes up. A
      // negative limit is invalid (RFC 5280 §4.2.1.9; OpenSSL marks the certificate invalid and
      // not a CA), so the certificate is refused instead of read as a CA without a limit.
      const limit: unknown = bc.pathLenConstraint; // typed number; a string at run time (above)
      if ((typeof limit === 'number' && limit < 0) || (typeof limit === 'string' && limit.startsWith('-'))) {
        throw new Error('negative pathLenConstraint');
      }
      if (bc.cA && typeof limit === 'number') pathLen = limit;
    } else if (e.extnID === id_ce_keyUsage) {
      keyUsage = (keyUsage ?? 0) | AsnConvert.parse(value, KeyUsage, PARSE).toNumber();
    } else if (e.extnID === id_ce_subjectAltName) {
      for (const n of AsnConvert.parse(value, SubjectAlternativeName, PARSE)) if (n.uniformResourceIdentifier !== undefined) uris.push(n.uniformResourceIdentifier);
    }
  }
  const validity = cert.tbsCertificate.validity;
  const notBefore = validity.notBefore.getTime();
  const notAfter = validity.notAfter.getTime();
  // asn1js reads times RFC 5280 forbids (no seconds, an offset, no Z, month 13) as some other
  // date; OpenSSL reads them as written or not at all ("Bad time value"). Both must agree.
  if (notBefore.getTime() !== Date.parse(node.validFrom) || notAfter.getTime() !== Date.parse(node.validTo)) {
    throw new Error('validity not read alike by OpenSSL');
  }
  return Object.freeze({
    node,
    isCA,
    pathLen,
    keyUsage,
    uris: Object.freeze(uris),
    notBefore,
    notAfter,
    selfIssued: node.subject === node.issuer,
    duplicateExtensions,
    criticalExtensions: Object.freeze(criticalExtensions),
  });
}

/**
 * Facts for one DER certificate. The bytes must be exactly one certificate (no trailing data).
 * Throws (any error) when the certificate cannot be parsed; callers map that to their own code.
 */
export function certFactsFromDer(der: Uint8Array): CertFacts {
  const key = createHash('sha256').update(der).digest('base64');
  const hit = cache.get(key);
  if (hit) {
    // refresh LRU position
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  if (der.length === 0 || der[0] !== 0x30) throw new Error('not DER');
  const node = new X509Certificate(der);
  if (node.raw.length !== der.length || !node.raw.equals(der)) throw new Error('trailing data');
  const facts = extract(node, der);
  cache.set(key, facts);
  if (cache.size > CACHE_MAX) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  return facts;
}

/** Facts for an already parsed `node:crypto` certificate (bundle authorities, own SVIDs). */
export function certFactsFromNode(node: X509Certificate): CertFacts {
  const hit = authorityCache.get(node);
  if (hit) return hit;
  const facts = extract(node, node.raw);
  authorityCache.set(node, facts);
  return facts;
}

/** Validity check: 'ok', 'expired' or 'not_yet_valid' at `now`. */
export function validityAt(f: CertFacts, now: Date): 'ok' | 'expired' | 'not_yet_valid' {
  const t = now.getTime();
  if (t < f.notBefore.getTime()) return 'not_yet_valid';
  if (t > f.notAfter.getTime()) return 'expired';
  return 'ok';
}
