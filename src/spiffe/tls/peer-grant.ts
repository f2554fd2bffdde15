/**
 * What a verified TLS peer was granted at its handshake, and whether that still holds.
 *
 * SPIFFE revokes by short SVID lifetimes and by removing authorities from trust bundles. A
 * keep-alive connection verified once at its handshake would outlive both, so the servers
 * re-check the grant on every request and on a periodic sweep: the verified path (leaf,
 * intermediates, authority) must still be inside its validity window, the authority it ended
 * in must still be in the *current* bundle of the peer's trust domain, and the connection must
 * be younger than the configured maximum age (so every client re-handshakes regularly).
 *
 * The check is a few comparisons and one Set lookup: the authority fingerprints of each
 * (immutable) bundle object are computed once and cached.
 */
import type { X509Bundle, X509BundleSource } from '../bundle.js';
import type { CertFacts } from '../certfacts.js';
import type { SpiffeId } from '../id.js';

export interface PeerGrant {
  readonly id: SpiffeId;
  /** Latest notBefore on the verified path (ms since epoch). */
  readonly validFrom: number;
  /** Earliest notAfter on the verified path (ms since epoch). */
  readonly validUntil: number;
  /** SHA-256 fingerprint of the bundle authority the path ended in (public). */
  readonly anchor: string;
  /** When the connection was verified (ms since epoch). */
  readonly establishedAt: number;
}

/** Why a grant no longer holds; `ok` when it does. */
type GrantVerdict = 'ok' | 'svid_expired' | 'svid_not_yet_valid' | 'anchor_withdrawn' | 'max_age';

/** Builds the grant from a verified path (leaf first, authority last). */
export function grantFromPath(id: SpiffeId, path: readonly CertFacts[], now: number): PeerGrant {
  let validFrom = -Infinity;
  let validUntil = Infinity;
  for (const c of path) {
    validFrom = Math.max(validFrom, c.notBefore.getTime());
    validUntil = Math.min(validUntil, c.notAfter.getTime());
  }
  const authority = path[path.length - 1];
  if (authority === undefined) throw new RangeError('empty verified path');
  return Object.freeze({ id, validFrom, validUntil, anchor: authority.node.fingerprint256, establishedAt: now });
}

const fingerprints = new WeakMap<X509Bundle, ReadonlySet<string>>();

function bundleFingerprints(b: X509Bundle): ReadonlySet<string> {
  let set = fingerprints.get(b);
  if (set === undefined) {
    set = new Set(b.authorities.map((a) => a.fingerprint256));
    fingerprints.set(b, set);
  }
  return set;
}

/** Is the grant's authority still in the current bundle of its trust domain? */
function anchorStillTrusted(g: PeerGrant, bundles: X509BundleSource): boolean {
  let b: X509Bundle | undefined;
  try {
    b = bundles.getX509BundleForTrustDomain(g.id.trustDomain);
  } catch {
    return false; // a closed source trusts nothing
  }
  return b !== undefined && bundleFingerprints(b).has(g.anchor);
}

/** Longest head start the server gives a connection to re-handshake before its SVID expires. */
const EXPIRY_MARGIN_MAX_MS = 30_000;

/**
 * Re-checks a grant. Time first (cheapest), then the anchor. `maxAgeMs` 0 means no age limit.
 *
 * `max_age` (answer, then close gracefully with `Connection: close`) is also returned once the
 * SVID is close to its end: in the last quarter of its lifetime, at most the last 30 s. A busy
 * keep-alive client then moves to a new connection, with its rotated SVID, before the old one
 * lapses, so only a connection that stayed silent through that window can meet the 401.
 */
export function checkGrant(g: PeerGrant, bundles: X509BundleSource, now: number, maxAgeMs: number): GrantVerdict {
  // X.509 validity includes notAfter itself.
  if (now > g.validUntil) return 'svid_expired';
  if (now < g.validFrom) return 'svid_not_yet_valid';
  if (!anchorStillTrusted(g, bundles)) return 'anchor_withdrawn';
  if (maxAgeMs > 0 && now - g.establishedAt >= maxAgeMs) return 'max_age';
  const margin = Math.min(EXPIRY_MARGIN_MAX_MS, Math.max(0, g.validUntil - g.validFrom) / 4);
  if (now >= g.validUntil - margin) return 'max_age';
  return 'ok';
}
