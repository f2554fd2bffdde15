/**
 * The policy model (D3): `name`, `spiffeIdPattern`, `pathPattern`, `permissions` ⊆
 * {read, write, list, execute, super}. `super` satisfies any wanted permission; permissions are
 * never combined across policies; no policy → deny. There are no deny rules (SPIKE has none,
 * and no route needs them; POL-23 does not apply).
 */
import { type Permission, PERMISSIONS } from '../../protocol/index.js';

export type { Permission };

/** A policy as stored (field names as in `src/store/types.ts`); may predate today's checks. */
export interface PolicyLike {
  readonly name: string;
  readonly spiffeIdPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly string[];
}

/** A policy that passed the write-time checks, ready to be stored. */
export interface CompiledPolicy {
  readonly name: string;
  readonly spiffeIdPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly Permission[];
}

/** One bit per permission, so a policy's grants are a number and a check is one `&`. */
const PERMISSION_BIT: Readonly<Record<Permission, number>> = { read: 1, write: 2, list: 4, execute: 8, super: 16 };

/** The bits of the known permissions in `perms` (unknown names, e.g. in old rows, grant nothing). */
export function permissionBits(perms: readonly string[]): number {
  let bits = 0;
  for (const p of perms) if ((PERMISSIONS as readonly string[]).includes(p)) bits |= PERMISSION_BIT[p as Permission];
  return bits;
}

/** The bits that satisfy a wish for `perm`: the permission itself or `super`. */
export function wantedBits(perm: Permission): number {
  return PERMISSION_BIT[perm] | PERMISSION_BIT.super;
}
