/**
 * What the mTLS server and client share (decision D14): TLS settings, defaults, the peer
 * check (X.509-SVID verification against the bundle of the claimed ID's own trust domain,
 * then an `Authorizer`), and secure contexts built from an X.509 source without turning the
 * private key into a JS string. Internal to src/spiffe: the public surface is re-exported
 * by tls.ts.
 */
import tls, { type DetailedPeerCertificate, type PeerCertificate, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { constants as cryptoConstants } from 'node:crypto';
import { SpikeError } from '../../lib/errors.js';
import type { SpiffeId } from '../id.js';
import type { X509Source } from '../source.js';
import { svidChainPem, svidPrivateKeyPem } from '../svid.js';
import type { Authorizer } from '../authorize.js';
import type { CertFacts } from '../certfacts.js';
import { verifyX509SvidDetailed } from '../verify.js';


/**
 * The other side's SVID failed verification or the authorizer refused its ID. `reason` is a
 * stable code (the verification error's code, or `'unauthorized'`); nothing in the error
 * echoes the certificate or the ID.
 */
export class PeerRejectedError extends SpikeError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('tls_peer_rejected', 'the TLS peer was rejected: its SVID is invalid or its SPIFFE ID is not authorized', options);
    this.reason = reason;
  }
}

/** Every default in one place. */
export const MTLS_DEFAULTS = Object.freeze({
  /** Verified connections at once. */
  maxConnections: 1024,
  /** Sockets still in the TLS handshake at once, in all and per remote address (admission.ts). */
  maxHandshakes: 256,
  maxHandshakesPerSource: 32,
  handshakeTimeoutMs: 5_000,
  /** Every connection re-handshakes after this (well below a typical SVID lifetime of 1 h). */
  maxConnectionAgeMs: 10 * 60_000,
  /** A socket with no byte read or written for this long is closed (clients that stop reading). */
  inactivityTimeoutMs: 30_000,
  /** How often connections are re-checked between requests (expiry, age). */
  sweepIntervalMs: 1_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  closeGraceMs: 2_000,
  clientConnections: 10,
  clientConnectTimeoutMs: 10_000,
  clientKeepAliveTimeoutMs: 4_000,
  clientHeadersTimeoutMs: 30_000,
  clientBodyTimeoutMs: 30_000,
  /** Longest peer chain we walk (leaf + intermediates + anchor). */
  maxChainLength: 16,
});

/**
 * TLS settings shared by both sides. TLS 1.3 only (catalogue TLS-20/24: no 1.2 hello, so no
 * renegotiation); security level 2 refuses RSA < 2048, curves < 224 bits and SHA-1 signatures.
 * `SSL_OP_NO_TICKET` and the absence of `newSession`/`resumeSession` handlers mean no session
 * is ever resumed (TLS-18/19): resumption would skip the peer check against the current bundle.
 */
export const TLS_BASE = Object.freeze({
  minVersion: 'TLSv1.3',
  ciphers: `${tls.DEFAULT_CIPHERS}:@SECLEVEL=2`,
  secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
} satisfies SecureContextOptions);

// ---------------------------------------------------------------------------------------------
// Peer verification (shared)

export type PeerCheck = { ok: true; id: SpiffeId; path: readonly CertFacts[] } | { ok: false; reason: string; error?: unknown; id?: SpiffeId };

/**
 * The peer's certificate chain as DER, leaf first, following Node's issuer links. Node orders
 * the presented certificates by issuer and completes the path from the local trust store, so
 * the chain may end in the trust anchor; a self-issued anchor after the leaf is dropped (it
 * comes from our own store; the bundle supplies anchors to the verifier).
 */
export function peerChainDer(socket: TLSSocket): Uint8Array[] {
  // With no peer certificate Node returns an empty object (typed as a certificate).
  const leaf: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return [];
  const chain: Uint8Array[] = [leaf.raw];
  const seen = new Set<DetailedPeerCertificate>([leaf]);
  let cur: DetailedPeerCertificate = leaf;
  while (chain.length < MTLS_DEFAULTS.maxChainLength) {
    const next: DetailedPeerCertificate | undefined = cur.issuerCertificate;
    if (!next || !next.raw || seen.has(next)) break;
    const selfIssued = next.issuerCertificate === next;
    if (selfIssued) break;
    chain.push(next.raw);
    seen.add(next);
    cur = next;
  }
  return chain;
}

function verifyChain(chain: readonly Uint8Array[], source: X509Source): { id: SpiffeId; path: readonly CertFacts[] } | { reason: string; error: unknown } {
  try {
    return verifyX509SvidDetailed(chain, source);
  } catch (error) {
    return { reason: error instanceof SpikeError ? error.code : 'svid_invalid', error };
  }
}

export function checkPeer(socket: TLSSocket, source: X509Source, authorize: Authorizer): PeerCheck {
  // Fast path: most SVIDs are signed directly by a bundle authority, and the leaf alone is
  // cheap to get. `getPeerCertificate(true)` costs more than the rest of a handshake's JS
  // work together, so the full chain is fetched only when the leaf alone does not verify.
  // A path found from fewer certificates is just as valid: identity and rules come from the
  // leaf, and the path must still end in the bundle of the leaf's trust domain.
  // (Not `getPeerX509Certificate()`: on Node 20, calling it first makes a later
  // `getPeerCertificate(true)` return the leaf alone, losing the intermediates.)
  const leaf = socket.getPeerCertificate(false) as PeerCertificate | undefined;
  if (!leaf || !leaf.raw) return { ok: false, reason: 'no_peer_certificate' };
  let result = verifyChain([leaf.raw], source);
  if (!('id' in result)) {
    const chain = peerChainDer(socket);
    if (chain.length > 1) result = verifyChain(chain, source);
  }
  if (!('id' in result)) return { ok: false, reason: result.reason, error: result.error };
  const { id, path } = result;
  // A workload leaf names a workload, never a bare trust domain (catalogue TLS-14).
  if (id.path === '') return { ok: false, reason: 'svid_bad_spiffe_id' };
  let allowed = false;
  try {
    allowed = authorize(id) === true;
  } catch (error) {
    return { ok: false, reason: 'authorizer_failed', error };
  }
  return allowed ? { ok: true, id, path } : { ok: false, reason: 'unauthorized', id };
}

// ---------------------------------------------------------------------------------------------
// Secure contexts from a source

/**
 * Secure-context options for the source's current SVID and bundles. The key PEM buffer is
 * returned separately so the caller can zero it once OpenSSL has copied it.
 */
export function contextOptions(source: X509Source): { options: SecureContextOptions; keyPem: Buffer } {
  const svid = source.getX509Svid();
  const cert = svidChainPem(svid);
  const ca = source.bundleSet().allAuthorities().map((c) => c.toString());
  const keyPem = svidPrivateKeyPem(svid);
  // `ca: []` (no bundles yet) trusts nothing: Node adds the system roots only when `ca` is absent.
  return { options: { ...TLS_BASE, cert, key: keyPem, ca }, keyPem };
}

export function secureContextFor(source: X509Source): tls.SecureContext {
  const { options, keyPem } = contextOptions(source);
  try {
    return tls.createSecureContext(options);
  } finally {
    keyPem.fill(0);
  }
}
