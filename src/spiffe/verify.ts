/**
 * X.509-SVID verification of a peer (decision D14; go-spiffe `svid/x509svid/verify.go`).
 *
 * Reads top to bottom:
 * 1. the chain is non-empty and every certificate parses;
 * 2. the leaf has exactly one URI SAN (read from DER) and it is a valid SPIFFE ID with a path;
 * 3. the leaf is not a CA, has digitalSignature, lacks keyCertSign and cRLSign, is in date;
 *    no certificate of the path carries a critical extension that is not processed
 *    ({@link unprocessedCritical});
 * 4. the bundle of *the SAN's own trust domain* is picked;
 * 5. a path is built from the leaf through the presented intermediates (any order, each used
 *    at most once, at most MAX_INTERMEDIATES) to one of that bundle's authorities. Each link
 *    is checked with `node:crypto` (`verify(publicKey)`, then `checkIssued`); every signer must be
 *    a CA with keyCertSign, in date, and within its pathLenConstraint.
 * Returns the verified SPIFFE ID. Every rejection is a {@link SvidVerificationError} with its
 * own stable code and a fixed message that never echoes certificate contents.
 */
import { SpikeError } from '../lib/index.js';
import { SpiffeId, SpiffeIdError } from './id.js';
import type { X509BundleSource } from './bundle.js';
import {
  certFactsFromDer,
  certFactsFromNode,
  validityAt,
  KU_CRL_SIGN,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  type CertFacts,
} from './certfacts.js';

/** Most intermediates allowed between the leaf and an authority. */
export const MAX_INTERMEDIATES = 8;
/** Most certificates accepted in a presented chain (leaf included). */
export const MAX_PRESENTED_CHAIN = 16;
/** Upper bound on issuer-candidate checks per verification (guards against path explosion). */
const MAX_LINK_CHECKS = 512;

/** Why an X.509-SVID was refused. `code` is stable; the message is fixed. */
export class SvidVerificationError extends SpikeError {
  constructor(code: SvidErrorCode, options?: { cause?: unknown }) {
    super(code, SVID_ERROR_MESSAGES[code], options);
  }
}

export const SVID_ERROR_MESSAGES = {
  svid_empty_chain: 'certificate chain is empty',
  svid_chain_too_long: 'certificate chain has too many certificates',
  svid_malformed: 'certificate cannot be parsed',
  svid_duplicate_extension: 'certificate repeats an extension',
  svid_unhandled_critical_extension: 'certificate has a critical extension that is not processed',
  svid_no_uri_san: 'leaf certificate has no URI SAN',
  svid_multiple_uri_sans: 'leaf certificate has more than one URI SAN',
  svid_bad_spiffe_id: 'leaf certificate URI SAN is not a valid SPIFFE ID',
  svid_leaf_no_path: 'leaf certificate SPIFFE ID has no path (a trust domain ID identifies no workload)',
  svid_leaf_is_ca: 'leaf certificate with CA flag set to true',
  svid_leaf_key_cert_sign: 'leaf certificate with KeyCertSign key usage',
  svid_leaf_crl_sign: 'leaf certificate with KeyCrlSign key usage',
  svid_leaf_no_digital_signature: 'leaf certificate lacks the digitalSignature key usage',
  svid_expired: 'certificate has expired',
  svid_not_yet_valid: 'certificate is not yet valid',
  svid_no_bundle: 'no trust bundle for the trust domain of the SPIFFE ID',
  svid_untrusted_chain: 'certificate chain does not lead to an authority of the SPIFFE ID trust domain',
  svid_intermediate_not_ca: 'signing certificate in the chain is not a CA',
  svid_intermediate_no_key_cert_sign: 'signing certificate in the chain lacks the keyCertSign key usage',
  svid_path_too_long: 'certificate path is longer than allowed',
  svid_key_malformed: 'SVID private key cannot be parsed',
  svid_key_mismatch: 'SVID private key does not match the leaf certificate',
} as const;

export type SvidErrorCode = keyof typeof SVID_ERROR_MESSAGES;

export interface VerifyOptions {
  /**
   * OpenSSL has already verified the presented chain (a TLS handshake with
   * `rejectUnauthorized`) and enforced the critical extensions it supports (name constraints,
   * policies, …), so those are accepted here too. Standalone callers leave it unset.
   */
  readonly opensslVerified?: boolean;
}

/**
 * Critical extensions the SVID rules process: basic constraints, key usage and the subject
 * alternative name (read), the key identifiers (OpenSSL's issuer check), and extended key
 * usage (any is accepted, as go-spiffe verifies with `ExtKeyUsageAny`).
 */
const PROCESSED: ReadonlySet<string> = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.37', // extKeyUsage
]);

/**
 * PROCESSED plus what OpenSSL's verifier supports when critical (X509_supported_extension);
 * OpenSSL itself refuses a critical key identifier, so those two never reach this check.
 */
const OPENSSL_PROCESSED: ReadonlySet<string> = new Set([
  ...PROCESSED,
  '2.5.29.31', // cRLDistributionPoints
  '1.3.6.1.5.5.7.48.1.5', // OCSP no-check
  '2.5.29.30', // nameConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.33', // policyMappings
  '2.5.29.36', // policyConstraints
  '2.5.29.54', // inhibitAnyPolicy
  '1.3.6.1.5.5.7.1.7', // RFC 3779 IP address blocks
  '1.3.6.1.5.5.7.1.8', // RFC 3779 AS identifiers
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '2.16.840.1.113730.1.1', // Netscape certificate type
]);

/**
 * Whether `f` carries a critical extension that nobody processed: RFC 5280 §4.2 says a
 * verifier must then refuse the certificate. Standalone, that is any outside PROCESSED (so a
 * critical name constraint, which go-spiffe would enforce, is refused here rather than
 * ignored); after OpenSSL verified the chain, any outside what OpenSSL supports.
 */
function unprocessedCritical(f: CertFacts, o: VerifyOptions): boolean {
  const known = o.opensslVerified === true ? OPENSSL_PROCESSED : PROCESSED;
  return f.criticalExtensions.some((oid) => !known.has(oid));
}

/** Result details of a successful verification. */
export interface VerifiedSvid {
  readonly id: SpiffeId;
  /** The verified path: leaf, intermediates used, then the authority. */
  readonly path: readonly CertFacts[];
}

function parseOrThrow(der: Uint8Array): CertFacts {
  let f: CertFacts;
  try {
    f = certFactsFromDer(der);
  } catch (cause) {
    throw new SvidVerificationError('svid_malformed', { cause });
  }
  if (f.duplicateExtensions) throw new SvidVerificationError('svid_duplicate_extension');
  return f;
}

/**
 * Checks the leaf alone: SAN → SPIFFE ID, CA flag, key usage. Exported for callers that
 * already verified the chain elsewhere and for the own-SVID rules in svid.ts.
 */
export function leafSpiffeId(leaf: CertFacts): SpiffeId {
  if (leaf.uris.length === 0) throw new SvidVerificationError('svid_no_uri_san');
  if (leaf.uris.length > 1) throw new SvidVerificationError('svid_multiple_uri_sans');
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(leaf.uris[0] as string);
  } catch (cause) {
    if (cause instanceof SpiffeIdError) throw new SvidVerificationError('svid_bad_spiffe_id', { cause });
    throw cause;
  }
  // X509-SVID §3.1/§5.2: leaf SPIFFE IDs MUST have a non-root path.
  if (id.path === '') throw new SvidVerificationError('svid_leaf_no_path');
  const ku = leaf.keyUsage;
  switch (true) {
    case leaf.isCA:
      throw new SvidVerificationError('svid_leaf_is_ca');
    case ku !== undefined && (ku & KU_KEY_CERT_SIGN) !== 0:
      throw new SvidVerificationError('svid_leaf_key_cert_sign');
    case ku !== undefined && (ku & KU_CRL_SIGN) !== 0:
      throw new SvidVerificationError('svid_leaf_crl_sign');
    case ku === undefined || (ku & KU_DIGITAL_SIGNATURE) === 0:
      throw new SvidVerificationError('svid_leaf_no_digital_signature');
  }
  return id;
}

function validityError(f: CertFacts, now: Date): SvidErrorCode | undefined {
  const v = validityAt(f, now);
  return v === 'expired' ? 'svid_expired' : v === 'not_yet_valid' ? 'svid_not_yet_valid' : undefined;
}

/**
 * Rules for a certificate that signs another one in the path. `below` is the number of
 * non-self-issued intermediates between the leaf and this signer.
 */
function signerError(f: CertFacts, below: number, now: Date, o: VerifyOptions): SvidErrorCode | undefined {
  if (!f.isCA) return 'svid_intermediate_not_ca';
  if (unprocessedCritical(f, o)) return 'svid_unhandled_critical_extension';
  if (f.keyUsage !== undefined && (f.keyUsage & KU_KEY_CERT_SIGN) === 0) return 'svid_intermediate_no_key_cert_sign';
  if (f.pathLen !== undefined && below > f.pathLen) return 'svid_path_too_long';
  return validityError(f, now);
}

/** Is `child` signed by `issuer`'s key under `issuer`'s name? (Signature by `node:crypto`.) */
function signs(issuer: CertFacts, child: CertFacts): boolean {
  if (child.node.issuer !== issuer.node.subject) return false; // cheap pre-filter
  try {
    return child.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

/**
 * Full link check once the signer rules passed: OpenSSL's `X509_check_issued` (canonical name
 * match, AKID/SKID consistency, keyCertSign when key usage is present).
 */
function issuedBy(issuer: CertFacts, child: CertFacts): boolean {
  return child.node.checkIssued(issuer.node);
}

/**
 * Verifies a presented chain (leaf first, then intermediates in any order) against the bundle
 * of the leaf's SPIFFE ID trust domain. Returns the ID and the verified path.
 */
export function verifyX509SvidDetailed(
  chainDer: readonly Uint8Array[],
  bundles: X509BundleSource,
  now: Date = new Date(),
  o: VerifyOptions = {},
): VerifiedSvid {
  if (chainDer.length === 0) throw new SvidVerificationError('svid_empty_chain');
  if (chainDer.length > MAX_PRESENTED_CHAIN) throw new SvidVerificationError('svid_chain_too_long');

  const leaf = parseOrThrow(chainDer[0] as Uint8Array);
  const id = leafSpiffeId(leaf);
  if (unprocessedCritical(leaf, o)) throw new SvidVerificationError('svid_unhandled_critical_extension');
  const leafTime = validityError(leaf, now);
  if (leafTime) throw new SvidVerificationError(leafTime);

  const bundle = bundles.getX509BundleForTrustDomain(id.trustDomain);
  if (!bundle || bundle.authorities.length === 0) throw new SvidVerificationError('svid_no_bundle');
  const authorities: CertFacts[] = [];
  for (const a of bundle.authorities) {
    try {
      authorities.push(certFactsFromNode(a));
    } catch {
      // An authority @peculiar/x509 cannot read can anchor nothing; skip it.
    }
  }
  const intermediates = chainDer.slice(1).map((d) => parseOrThrow(d));

  // Depth-first search for a path leaf → intermediates* → authority.
  let firstReason: SvidErrorCode | undefined;
  let checks = 0;
  const used = new Array<boolean>(intermediates.length).fill(false);
  const path: CertFacts[] = [leaf];

  const search = (cert: CertFacts, below: number): boolean => {
    for (const a of authorities) {
      if (++checks > MAX_LINK_CHECKS) return false;
      if (!signs(a, cert)) continue;
      const err = signerError(a, below, now, o) ?? (issuedBy(a, cert) ? undefined : 'svid_untrusted_chain');
      if (err) {
        firstReason ??= err === 'svid_intermediate_not_ca' || err === 'svid_intermediate_no_key_cert_sign' ? 'svid_untrusted_chain' : err;
        continue;
      }
      path.push(a);
      return true;
    }
    if (path.length - 1 >= MAX_INTERMEDIATES) {
      // path holds the leaf plus the intermediates used so far.
      firstReason ??= 'svid_path_too_long';
      return false;
    }
    for (let i = 0; i < intermediates.length; i++) {
      if (used[i]) continue;
      const im = intermediates[i] as CertFacts;
      if (++checks > MAX_LINK_CHECKS) return false;
      if (!signs(im, cert)) continue;
      const err = signerError(im, below, now, o) ?? (issuedBy(im, cert) ? undefined : 'svid_untrusted_chain');
      if (err) {
        firstReason ??= err;
        continue;
      }
      used[i] = true;
      path.push(im);
      if (search(im, below + (im.selfIssued ? 0 : 1))) return true;
      path.pop();
      used[i] = false;
    }
    return false;
  };

  if (!search(leaf, 0)) throw new SvidVerificationError(firstReason ?? 'svid_untrusted_chain');
  return { id, path: Object.freeze(path) };
}

/** Verifies a presented chain (leaf first) and returns the peer's SPIFFE ID. */
export function verifyX509Svid(chainDer: readonly Uint8Array[], bundles: X509BundleSource, now?: Date, o?: VerifyOptions): SpiffeId {
  return verifyX509SvidDetailed(chainDer, bundles, now, o).id;
}
