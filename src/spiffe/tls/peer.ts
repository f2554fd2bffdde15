/**
 * The peer check both sides run right after OpenSSL's handshake (D14): the peer's X.509-SVID
 * is verified against the bundle of the claimed ID's own trust domain (../verify.ts), then an
 * `Authorizer` decides on the resulting SPIFFE ID. What the peer was granted is re-checked
 * later by peer-grant.ts.
 */
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import { SpikeError } from '../../lib/index.js';
import type { Authorizer } from '../authorize.js';
import type { CertFacts } from '../certfacts.js';
import type { SpiffeId } from '../id.js';
import type { X509Source } from '../source.js';
import { verifyX509SvidDetailed } from '../verify.js';
import { MTLS_DEFAULTS } from './context.js';

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

type PeerCheck = { ok: true; id: SpiffeId; path: readonly CertFacts[] } | { ok: false; reason: string; error?: unknown; id?: SpiffeId };

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
    // The handshake verified the chain first (rejectUnauthorized), critical extensions included.
    return verifyX509SvidDetailed(chain, source, new Date(), { opensslVerified: true });
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
  // A workload leaf names a workload, never a bare trust domain (TLS-14).
  if (id.path === '') return { ok: false, reason: 'svid_bad_spiffe_id' };
  let allowed = false;
  try {
    allowed = authorize(id) === true;
  } catch (error) {
    return { ok: false, reason: 'authorizer_failed', error };
  }
  return allowed ? { ok: true, id, path } : { ok: false, reason: 'unauthorized', id };
}
