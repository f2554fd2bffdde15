/**
 * Shared fixtures of the policy engine and authorizer tests: a policy literal, and fast-check
 * arbitraries with an independent reference decision. The reference uses V8 `RegExp` as an
 * oracle on a restricted pattern grammar whose RE2 and JS semantics coincide (tests only;
 * production never runs policy patterns on V8).
 */
import fc from 'fast-check';
import type { Permission, PolicyLike } from '../../src/nexus/policy/index.js';
import { compileBounded } from '../../src/patterns/index.js';

export const pol = (name: string, spiffeIdPattern: string, pathPattern: string, permissions: string[]): PolicyLike => ({ name, spiffeIdPattern, pathPattern, permissions });

/** Patterns whose RE2 and JS semantics coincide. */
export const patternArb: fc.Arbitrary<string> = fc.letrec((tie) => ({
  atom: fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom('a', 'b', '/', 'x') },
    { weight: 2, arbitrary: fc.constantFrom('.', '[ab]', '[^a]', '\\.', '\\/') },
    { weight: 1, arbitrary: fc.tuple(tie('seq'), tie('seq')).map(([x, y]) => `(${x}|${y})`) },
  ),
  piece: fc.tuple(tie('atom') as fc.Arbitrary<string>, fc.constantFrom('', '', '', '*', '+', '?', '{2}')).map(([a, q]) => a + q),
  seq: fc.array(tie('piece') as fc.Arbitrary<string>, { minLength: 1, maxLength: 4 }).map((x) => x.join('')),
})).seq.chain((p) => fc.constantFrom(p, `^${p}$`, `^${p}`, `${p}$`));

export const pathArb = fc.string({ unit: fc.constantFrom('a', 'b', '/', 'x', '.'), maxLength: 8 });
export const permArb = fc.constantFrom<Permission>('read', 'write', 'list', 'execute');
export const permsArb = fc.subarray(['read', 'write', 'list', 'execute', 'super'], { minLength: 1 });
export const peerArb = fc.constantFrom('spiffe://t/a', 'spiffe://t/b', 'spiffe://t/ab', 'spiffe://u/a');
export const idPatternArb = fc.constantFrom('spiffe://t/a', '^spiffe://t/b$', 'spiffe://t/.*', 'spiffe://t/a.*', 'spiffe://[tu]/a', '.*', 'spiffe://t/(a|b)');

export function oracle(pattern: string, s: string): boolean {
  // JS oracle with explicit anchors (safe: patterns come from the balanced grammar above).
  return new RegExp(`^(?:${pattern})$`).test(s);
}

export function reference(policies: PolicyLike[], peer: string, path: string, perm: Permission): boolean {
  return policies.some(
    (p) => (p.permissions.includes(perm) || p.permissions.includes('super')) && oracle(p.spiffeIdPattern, peer) && oracle(p.pathPattern, path),
  );
}

/**
 * Policies that can be stored: a pattern over the compiled-size bound is refused when written
 * (`policy_*_pattern_too_complex`), so it never reaches the engine and the reference does not
 * model it (the refusal has its own tests). The grammar makes one rarely (~1 in 300 runs).
 */
export const policyArb = fc
  .record({ name: fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5'), spiffeIdPattern: idPatternArb, pathPattern: patternArb, permissions: permsArb })
  .filter((p) => typeof compileBounded(p.spiffeIdPattern) !== 'string' && typeof compileBounded(p.pathPattern) !== 'string');
