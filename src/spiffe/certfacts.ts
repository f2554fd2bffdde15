/**
 * The facts about one X.509 certificate that SVID rules need (CA flag, key usage, URI SANs,
 * validity), read from DER with @peculiar/x509 — never from Node's parsed SAN text string —
 * and paired with the `node:crypto` X509Certificate used for signature checks.
 *
 * Parsing with @peculiar/x509 is slow (tens of microseconds to milliseconds), so results are
 * kept in a small bounded cache keyed by the SHA-256 of the DER bytes (certificates are
 * public; only immutable facts are cached — time checks are always redone by the caller).
 */
import 'reflect-metadata';
import { createHash, X509Certificate } from 'node:crypto';
import * as px from '@peculiar/x509';

/** Immutable facts about one certificate. */
export interface CertFacts {
  readonly node: X509Certificate;
  /** Basic constraints present with cA = TRUE. */
  readonly isCA: boolean;
  /** pathLenConstraint of a CA, if any. */
  readonly pathLen: number | undefined;
  /** Key usage bit flags (px.KeyUsageFlags), or undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  /** Every URI SAN, in certificate order (values exactly as encoded). */
  readonly uris: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Subject equals issuer (self-issued, RFC 5280 §6.1). */
  readonly selfIssued: boolean;
  /** Some extension OID appears more than once (RFC 5280 §4.2 forbids it). */
  readonly duplicateExtensions: boolean;
}

export const KU_DIGITAL_SIGNATURE = px.KeyUsageFlags.digitalSignature;
export const KU_KEY_CERT_SIGN = px.KeyUsageFlags.keyCertSign;
export const KU_CRL_SIGN = px.KeyUsageFlags.cRLSign;

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_SAN = '2.5.29.17';

const CACHE_MAX = 512;
const cache = new Map<string, CertFacts>();
const authorityCache = new WeakMap<X509Certificate, CertFacts>();

function extract(node: X509Certificate, der: Uint8Array): CertFacts {
  const cert = new px.X509Certificate(der);
  const exts = cert.extensions;
  const seen = new Set<string>();
  let duplicateExtensions = false;
  for (const e of exts) {
    if (seen.has(e.type)) duplicateExtensions = true;
    seen.add(e.type);
  }
  let isCA = false;
  let pathLen: number | undefined;
  let keyUsage: number | undefined;
  const uris: string[] = [];
  for (const e of exts) {
    if (e.type === OID_BASIC_CONSTRAINTS) {
      const bc = e instanceof px.BasicConstraintsExtension ? e : new px.BasicConstraintsExtension(e.rawData);
      isCA = isCA || bc.ca === true;
      if (bc.ca && typeof bc.pathLength === 'number') pathLen = bc.pathLength;
    } else if (e.type === OID_KEY_USAGE) {
      const ku = e instanceof px.KeyUsagesExtension ? e : new px.KeyUsagesExtension(e.rawData);
      keyUsage = (keyUsage ?? 0) | ku.usages;
    } else if (e.type === OID_SAN) {
      const san = e instanceof px.SubjectAlternativeNameExtension ? e : new px.SubjectAlternativeNameExtension(e.rawData);
      for (const n of san.names.items) if (n.type === px.URL) uris.push(n.value);
    }
  }
  return Object.freeze({
    node,
    isCA,
    pathLen,
    keyUsage,
    uris: Object.freeze(uris),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    selfIssued: node.subject === node.issuer,
    duplicateExtensions,
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
