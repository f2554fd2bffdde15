/**
 * Authorisation guards. A {@link Guard} can only be produced by the factories in this module:
 *
 * - at the type level, `Guard<B>` carries a property keyed by a `unique symbol` that is not
 *   exported, so no other module can write an object literal of that type (only an explicit
 *   `as unknown as Guard` cast could forge one, which review catches);
 * - at run time, every guard made here is recorded in a private `WeakSet`, and the router
 *   refuses (throws at start-up) any route whose guard is not in it.
 * Together with `defineRoute` requiring a `guard` member, a route without a guard does not
 * type-check, and a forged guard does not start.
 *
 * A guard's predicate receives the caller's verified identity (type `P`: a SPIFFE ID unless the
 * application says otherwise) and the validated request body and answers allow (`true`) or
 * deny (`false`). Guards are synchronous: whatever they consult (e.g. a policy engine) is fed
 * ahead of time, so there is no I/O (and no await gap) inside authorisation.
 *
 * Every guard also has an identity-only pre-check, {@link Guard.admits}, which the router runs
 * before it reads a byte of the body: a caller that cannot be allowed on the route whatever
 * the body says gets 401 without the body being read, parsed or validated, so validation
 * errors (400) are never an oracle for callers with no business on the route. For
 * {@link guardIdentity} guards the pre-check is the whole check. {@link guardBody} guards must
 * be given one (a type error otherwise): a conservative predicate that is true whenever the
 * full check could be true for some body (e.g. "has a policy granting this permission on any
 * path"); the full check still runs on the validated body.
 */
import type { SpiffeId } from '../spiffe/index.js';
import { ApiError, errorCode } from './errors.js';

declare const GUARD_BRAND: unique symbol;

/**
 * An authorisation check for a request body of type `B` from a peer of type `P`. Make one with
 * the factories below.
 */
export interface Guard<B, P = SpiffeId> {
  readonly [GUARD_BRAND]: true;
  /** Short name for logs and route listings, e.g. `item.get`. */
  readonly name: string;
  /**
   * Identity-only pre-check, run before the body is read: `false` → 401 at once. Must be true
   * whenever {@link check} could be true for this caller with some body (conservative).
   */
  readonly admits: (peer: P) => boolean;
  /** Allow (`true`) or deny, on the validated body. Called only by the router (and tests). */
  readonly check: (peer: P, body: B) => boolean;
  /** True when the guard looks at the identity only (its `admits` is the whole check). */
  readonly identityOnly: boolean;
}

const issued = new WeakSet<object>();

function make<B, P>(
  name: string,
  admits: (peer: P) => boolean,
  check: (peer: P, body: B) => boolean,
  identityOnly: boolean,
): Guard<B, P> {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('guard needs a name');
  if (typeof admits !== 'function') throw new TypeError('guard needs an identity pre-check');
  if (typeof check !== 'function') throw new TypeError('guard needs a predicate');
  const g = Object.freeze({ name, admits, check, identityOnly }) as unknown as Guard<B, P>;
  issued.add(g);
  return g;
}

/** True only for guards produced by this module. */
export function isGuard(g: unknown): g is Guard<unknown, never> {
  return typeof g === 'object' && g !== null && issued.has(g);
}

/** A guard that looks only at the caller's identity (roles, identity-only policy checks). */
export function guardIdentity<P = SpiffeId>(name: string, allow: (peer: P) => boolean): Guard<unknown, P> {
  const pred = (peer: P): boolean => allow(peer) === true;
  return make<unknown, P>(name, pred, (peer) => pred(peer), true);
}

/** The two predicates of a {@link guardBody} guard. */
interface BodyGuardPredicates<B, P = SpiffeId> {
  /**
   * Identity-only, run before the body is read: true when this caller could be allowed on the
   * route with some body (e.g. superuser, or any policy granting the permission on any path).
   */
  admits(peer: P): boolean;
  /** The full decision on the validated body (e.g. the permission on the body's path). */
  allow(peer: P, body: B): boolean;
}

/** A guard that also needs the validated body (e.g. the path of the item being accessed). */
export function guardBody<B, P = SpiffeId>(name: string, p: BodyGuardPredicates<B, P>): Guard<B, P> {
  if (p === null || typeof p !== 'object' || typeof p.admits !== 'function' || typeof p.allow !== 'function') {
    throw new TypeError('guardBody needs admits and allow predicates');
  }
  const admits = (peer: P): boolean => p.admits(peer) === true;
  // The full check implies the pre-check, whatever `allow` says: a guard never allows a caller
  // its own pre-check would have turned away (keeps the two decisions consistent).
  return make<B, P>(name, admits, (peer, body) => admits(peer) && p.allow(peer, body) === true, false);
}

/** Denies everyone. */
export function denyAll(name = 'deny-all'): Guard<unknown, unknown> {
  return make<unknown, unknown>(name, () => false, () => false, true);
}

/** Allows when any of the guards allows. */
export function anyOf<B, P = SpiffeId>(name: string, ...guards: Array<Guard<B, P>>): Guard<B, P> {
  for (const g of guards) if (!isGuard(g)) throw new TypeError('anyOf needs guards');
  return make<B, P>(
    name,
    (peer) => guards.some((g) => g.admits(peer)),
    (peer, body) => guards.some((g) => g.check(peer, body)),
    guards.every((g) => g.identityOnly),
  );
}

/**
 * Runs a guard's identity pre-check (`pre`) or its full check on the validated body, for the
 * router; a throwing guard counts as an internal error (fails closed), except an
 * {@link ApiError}, which is the guard's own answer (e.g. 503: the facts it decides on are
 * unavailable right now) and is passed on as is.
 */
export function runGuard<B, P>(g: Guard<B, P>, peer: P, body: B, pre: boolean): boolean {
  try {
    return (pre ? g.admits(peer) : g.check(peer, body)) === true;
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(errorCode('internal'), 'authorisation failed', { cause: e, reason: 'guard_error' });
  }
}
