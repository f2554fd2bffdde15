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
 * A guard's predicate receives the caller's verified SPIFFE ID and the validated request body
 * and answers allow (`true`) or deny (`false`). Guards are synchronous: the policy engine is
 * fed its policies ahead of time, so there is no I/O (and no await gap) inside authorisation.
 */
import type { SpiffeId } from '../spiffe/id.js';

declare const GUARD_BRAND: unique symbol;

/** An authorisation check for a request body of type `B`. Make one with the factories below. */
export interface Guard<B> {
  readonly [GUARD_BRAND]: true;
  /** Short name for logs and route listings, e.g. `secret.get`. */
  readonly name: string;
  /** Allow (`true`) or deny. Called only by the router (and tests). */
  readonly check: (peer: SpiffeId, body: B) => boolean;
}

const issued = new WeakSet<object>();

function make<B>(name: string, check: (peer: SpiffeId, body: B) => boolean): Guard<B> {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('guard needs a name');
  if (typeof check !== 'function') throw new TypeError('guard needs a predicate');
  const g = Object.freeze({ name, check }) as unknown as Guard<B>;
  issued.add(g);
  return g;
}

/** True only for guards produced by this module. */
export function isGuard(g: unknown): g is Guard<unknown> {
  return typeof g === 'object' && g !== null && issued.has(g);
}

/** A guard that looks only at the caller's identity (roles, identity-only policy checks). */
export function guardIdentity(name: string, allow: (peer: SpiffeId) => boolean): Guard<unknown> {
  return make<unknown>(name, (peer) => allow(peer) === true);
}

/** A guard that also needs the validated body (e.g. the secret path being accessed). */
export function guardBody<B>(name: string, allow: (peer: SpiffeId, body: B) => boolean): Guard<B> {
  return make<B>(name, (peer, body) => allow(peer, body) === true);
}

/** Denies everyone. */
export function denyAll(name = 'deny-all'): Guard<unknown> {
  return make<unknown>(name, () => false);
}

/** Allows when any of the guards allows. */
export function anyOf<B>(name: string, ...guards: Array<Guard<B>>): Guard<B> {
  for (const g of guards) if (!isGuard(g)) throw new TypeError('anyOf needs guards');
  return make<B>(name, (peer, body) => guards.some((g) => g.check(peer, body)));
}
