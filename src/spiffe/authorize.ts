/**
 * Authorizers: predicates on a verified peer SPIFFE ID, composed as values
 * (go-spiffe `spiffetls/tlsconfig` `AuthorizeID`, `AuthorizeOneOf`, `AuthorizeMemberOf`, ...).
 * Matching is exact: no prefixes, no case folding.
 */
import type { SpiffeId, TrustDomain } from './id.js';

export type Authorizer = (id: SpiffeId) => boolean;

/** Accepts any verified SPIFFE ID. */
export function authorizeAny(): Authorizer {
  return () => true;
}

/** Accepts exactly this ID. */
export function authorizeId(expected: SpiffeId): Authorizer {
  return (id) => id.equals(expected);
}

/** Accepts exactly one of these IDs. */
export function authorizeOneOf(...ids: SpiffeId[]): Authorizer {
  const set = new Set(ids.map((i) => i.toString()));
  return (id) => set.has(id.toString());
}

/** Accepts any ID of this trust domain. */
export function authorizeMemberOf(td: TrustDomain): Authorizer {
  return (id) => id.memberOf(td);
}

/** Accepts IDs for which the predicate returns exactly `true`; a throwing predicate denies. */
export function authorizeIf(pred: (id: SpiffeId) => boolean): Authorizer {
  return (id) => {
    try {
      return pred(id) === true;
    } catch {
      return false;
    }
  };
}

/** Accepts an ID if every authorizer accepts it. */
export function authorizeAll(...authorizers: Authorizer[]): Authorizer {
  return (id) => authorizers.length > 0 && authorizers.every((a) => a(id));
}

/** Accepts an ID if some authorizer accepts it. */
export function authorizeSome(...authorizers: Authorizer[]): Authorizer {
  return (id) => authorizers.some((a) => a(id));
}
