/**
 * Turns Workload API responses into SVIDs and bundles: each SVID passes the own-SVID rules
 * and its `spiffe_id` field must name the certificate's ID; each SVID's trust domain needs its
 * bundle; federated bundles never replace a trust domain's own. A response that breaks a rule
 * is a `workload_api_bad_response` error.
 */
import { X509Bundle, X509BundleSet } from '../bundle.js';
import { TrustDomain } from '../id.js';
import { parseX509Svid, type X509Svid } from '../svid.js';
import { badResponse } from './errors.js';
import type { X509BundlesResponseMessage, X509SvidResponseMessage } from './proto.js';

/** The parsed content of one `X509SVIDResponse`. */
export interface X509Context {
  /** At least one; the first is the default. */
  svids: X509Svid[];
  bundles: X509BundleSet;
}

function parseBundleMap(map: Record<string, Buffer>, into: X509BundleSet, skip?: (td: TrustDomain) => boolean): void {
  for (const [key, der] of Object.entries(map)) {
    let td: TrustDomain;
    try {
      td = TrustDomain.parse(key);
    } catch (cause) {
      throw badResponse('Workload API response has a bundle keyed by an invalid trust domain', cause);
    }
    if (skip?.(td)) continue;
    try {
      into.set(X509Bundle.fromDer(td, der));
    } catch (cause) {
      throw badResponse('Workload API response has a malformed bundle', cause);
    }
  }
}

/**
 * Turns an `X509SVIDResponse` into SVIDs and bundles, applying the own-SVID rules to each SVID
 * and checking that its `spiffe_id` field names the certificate's ID. Zeroes the key bytes of
 * the message. Throws {@link WorkloadApiError} `workload_api_bad_response`.
 */
export function parseX509SvidResponse(resp: X509SvidResponseMessage): X509Context {
  try {
    if (resp.svids.length === 0) throw badResponse('Workload API response carries no X.509-SVID');
    const svids: X509Svid[] = [];
    const bundles = new X509BundleSet();
    for (const m of resp.svids) {
      let svid: X509Svid;
      try {
        svid = parseX509Svid(m.x509_svid, m.x509_svid_key, m.hint);
      } catch (cause) {
        throw badResponse('Workload API response has an invalid X.509-SVID', cause);
      }
      if (svid.id.toString() !== m.spiffe_id) throw badResponse('Workload API response spiffe_id does not match its certificate');
      svids.push(svid);
      if (m.bundle.length > 0 && !bundles.has(svid.id.trustDomain)) {
        try {
          bundles.set(X509Bundle.fromDer(svid.id.trustDomain, m.bundle));
        } catch (cause) {
          throw badResponse('Workload API response has a malformed bundle', cause);
        }
      }
    }
    const own = svids[0]!.id.trustDomain;
    if (!bundles.has(own)) throw badResponse('Workload API response lacks the bundle of the SVID trust domain');
    // A federated entry never replaces a trust domain's own bundle.
    const ownDomains = new Set(svids.map((s) => s.id.trustDomain.name));
    parseBundleMap(resp.federated_bundles, bundles, (td) => ownDomains.has(td.name));
    return { svids, bundles };
  } finally {
    for (const m of resp.svids) m.x509_svid_key.fill(0);
  }
}

/** Turns an `X509BundlesResponse` into a bundle set. */
export function parseX509BundlesResponse(resp: X509BundlesResponseMessage): X509BundleSet {
  const set = new X509BundleSet();
  parseBundleMap(resp.bundles, set);
  if (set.size === 0) throw badResponse('Workload API response carries no bundle');
  return set;
}
