/**
 * The write-time checks of a policy (D3): SPIKE's name rule, SPIKE's
 * SPIFFE-ID-pattern and path-pattern grammars, the permission names, and both patterns must
 * compile on re2js (SPIKE answers 500 for what its Go regexp cannot compile; we refuse it at
 * write time, B4) within the program bound that keeps matching cheap (MAX_PATTERN_PROGRAM). Pure: a failure is a {@link PolicyError}; the route maps it to HTTP.
 */
import { isPermission, isValidName, isValidPathPattern, isValidSpiffeIdPattern, PERMISSIONS, type Permission } from '../../protocol/index.js';
import { PolicyError } from './errors.js';
import type { CompiledPolicy, PolicyLike } from './model.js';
import { compileBounded } from './patterns.js';

/**
 * Non-empty, each exactly one of the five names (case-sensitive). Duplicates are accepted as in
 * SPIKE and collapsed; the result is in canonical order.
 */
function checkPermissions(list: readonly string[]): Permission[] {
  if (!Array.isArray(list) || list.length === 0) throw new PolicyError('policy_invalid_permissions');
  const seen = new Set<Permission>();
  for (const p of list) {
    if (!isPermission(p)) throw new PolicyError('policy_invalid_permissions');
    seen.add(p);
  }
  return PERMISSIONS.filter((p) => seen.has(p));
}

/** Checks a policy for a write, in SPIKE's order; throws {@link PolicyError} on the first failure. */
export function compilePolicy(input: PolicyLike): CompiledPolicy {
  if (!isValidName(input.name)) throw new PolicyError('policy_invalid_name');
  if (!isValidSpiffeIdPattern(input.spiffeIdPattern)) throw new PolicyError('policy_invalid_spiffeid_pattern');
  if (!isValidPathPattern(input.pathPattern)) throw new PolicyError('policy_invalid_path_pattern');
  const permissions = checkPermissions(input.permissions);
  const id = compileBounded(input.spiffeIdPattern);
  if (id === 'not_compiled') throw new PolicyError('policy_spiffeid_pattern_not_compiled');
  if (id === 'too_complex') throw new PolicyError('policy_spiffeid_pattern_too_complex');
  const path = compileBounded(input.pathPattern);
  if (path === 'not_compiled') throw new PolicyError('policy_path_pattern_not_compiled');
  if (path === 'too_complex') throw new PolicyError('policy_path_pattern_too_complex');
  return Object.freeze({
    name: input.name,
    spiffeIdPattern: input.spiffeIdPattern,
    pathPattern: input.pathPattern,
    permissions: Object.freeze(permissions),
  });
}
