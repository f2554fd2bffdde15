/**
 * The five policy permissions, in canonical order, and their check. Servers validate policy
 * bodies with {@link validatePermissions}; clients check a caller's list with
 * {@link isPermission} before sending.
 */
import { REASON, badRequest } from './errors.js';

export const PERMISSIONS = ['read', 'write', 'list', 'execute', 'super'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(p: unknown): p is Permission {
  return typeof p === 'string' && (PERMISSIONS as readonly string[]).includes(p);
}

/**
 * Permissions: non-empty, each exactly one of the five names (case-sensitive). Duplicates
 * are accepted as in SPIKE and collapsed; the result is in canonical order.
 */
export function validatePermissions(list: readonly string[]): Permission[] {
  if (!Array.isArray(list) || list.length === 0) throw badRequest(REASON.invalidPermission, 'invalid permissions');
  const seen = new Set<Permission>();
  for (const p of list) {
    if (!isPermission(p)) throw badRequest(REASON.invalidPermission, 'invalid permissions');
    seen.add(p);
  }
  return PERMISSIONS.filter((p) => seen.has(p));
}
