/**
 * X.509 trust bundles: the CA certificates (authorities) trusted for one trust domain, and a
 * set of bundles keyed by trust domain (modelled on go-spiffe's `bundle/x509bundle`).
 * Authorities are `node:crypto` X509Certificate objects. Bundles are immutable; a set is a
 * small mutable map used by sources.
 */
import { X509Certificate } from 'node:crypto';
import { SpikeError } from '../lib/index.js';
import { TrustDomain } from './id.js';
import { certificatesPem, pemBlocks } from './pem.js';

/** Bundle bytes that are not a list of certificates. */
export class BundleError extends SpikeError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/**
 * Splits concatenated DER certificates (the Workload API encoding) into X509Certificates.
 * Parsing is OpenSSL's: `new X509Certificate(buf)` reads the first certificate and its `raw`
 * length tells where the next one starts; the bytes must match exactly.
 */
export function parseConcatenatedDer(der: Uint8Array, max = 64): X509Certificate[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const out: X509Certificate[] = [];
  let off = 0;
  while (off < buf.length) {
    if (out.length >= max) throw new BundleError('cert_too_many', 'too many certificates');
    // DER certificates start with a SEQUENCE tag; refuse anything else (e.g. PEM text).
    if (buf[off] !== 0x30) throw new BundleError('cert_malformed', 'certificate data is not DER');
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(buf.subarray(off));
    } catch {
      throw new BundleError('cert_malformed', 'certificate data cannot be parsed');
    }
    const raw = cert.raw;
    if (raw.length === 0 || off + raw.length > buf.length || !raw.equals(buf.subarray(off, off + raw.length))) {
      throw new BundleError('cert_malformed', 'certificate data cannot be parsed');
    }
    out.push(cert);
    off += raw.length;
  }
  return out;
}

/** Parses every `CERTIFICATE` block of a PEM text. */
export function parsePemCertificates(pem: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const der of pemBlocks(pem, 'CERTIFICATE')) {
    try {
      out.push(new X509Certificate(der));
    } catch {
      throw new BundleError('cert_malformed', 'certificate data cannot be parsed');
    }
  }
  return out;
}

/** The X.509 authorities of one trust domain. Immutable. */
export class X509Bundle {
  readonly trustDomain: TrustDomain;
  readonly authorities: readonly X509Certificate[];

  constructor(td: TrustDomain, authorities: Iterable<X509Certificate>) {
    this.trustDomain = td;
    const list: X509Certificate[] = [];
    const seen = new Set<string>();
    for (const a of authorities) {
      if (!(a instanceof X509Certificate)) throw new BundleError('bundle_invalid', 'bundle authority is not a certificate');
      const fp = a.fingerprint256;
      if (seen.has(fp)) continue; // de-duplicate, keep first
      seen.add(fp);
      list.push(a);
    }
    this.authorities = Object.freeze(list);
  }

  /** Parses concatenated DER certificates (Workload API `bundle` encoding). */
  static fromDer(td: TrustDomain, concatenatedDer: Uint8Array): X509Bundle {
    return new X509Bundle(td, parseConcatenatedDer(concatenatedDer));
  }

  /** Parses the CERTIFICATE blocks of a PEM text. */
  static fromPem(td: TrustDomain, pem: string): X509Bundle {
    return new X509Bundle(td, parsePemCertificates(pem));
  }

  /** Concatenated DER certificates. */
  toDer(): Buffer {
    return Buffer.concat(this.authorities.map((a) => a.raw));
  }

  /** PEM text, one block per authority. */
  toPem(): string {
    return certificatesPem(this.authorities);
  }

  /** True if the given certificate (same DER) is one of the authorities. */
  hasAuthority(cert: X509Certificate): boolean {
    return this.authorities.some((a) => a.raw.equals(cert.raw));
  }

  /** A new bundle with the same trust domain and different authorities. */
  withAuthorities(authorities: Iterable<X509Certificate>): X509Bundle {
    return new X509Bundle(this.trustDomain, authorities);
  }
}

/** Anything that can hand out the bundle of a trust domain. */
export interface X509BundleSource {
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined;
}

/** A set of bundles, at most one per trust domain. */
export class X509BundleSet implements X509BundleSource {
  readonly #bundles = new Map<string, X509Bundle>();

  constructor(bundles?: Iterable<X509Bundle>) {
    if (bundles) for (const b of bundles) this.set(b);
  }

  /** Adds or replaces the bundle of `b.trustDomain`. */
  set(b: X509Bundle): void {
    this.#bundles.set(b.trustDomain.name, b);
  }

  get(td: TrustDomain): X509Bundle | undefined {
    return this.#bundles.get(td.name);
  }

  has(td: TrustDomain): boolean {
    return this.#bundles.has(td.name);
  }

  delete(td: TrustDomain): void {
    this.#bundles.delete(td.name);
  }

  /** Bundles sorted by trust domain name. */
  bundles(): X509Bundle[] {
    return [...this.#bundles.values()].sort((a, b) => (a.trustDomain.name < b.trustDomain.name ? -1 : a.trustDomain.name > b.trustDomain.name ? 1 : 0));
  }

  /** Every authority of every bundle (e.g. for a TLS `ca` list). */
  allAuthorities(): X509Certificate[] {
    return this.bundles().flatMap((b) => b.authorities);
  }

  get size(): number {
    return this.#bundles.size;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.get(td);
  }

  /** A shallow copy (bundles themselves are immutable). */
  clone(): X509BundleSet {
    return new X509BundleSet(this.#bundles.values());
  }
}
