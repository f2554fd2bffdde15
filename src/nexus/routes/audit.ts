/**
 * `POST /v1/audit/hash` (additive; superuser only): the HMAC a secret path has in the audit
 * trail (`audit-path/v1` purpose key, docs/audit.md), so an operator can search the trail for
 * one secret without the trail ever holding the path. Works whether or not this Nexus writes
 * an audit trail (the key comes from the root key, shared by every Nexus on one store).
 */
import { AuditKeys } from '../../audit/index.js';
import { type Route, defineRoute, guardIdentity } from '../../http/index.js';
import { AuditHashRequest, ERROR_SHAPES, PATHS, type AuditHashResponse } from '../../protocol/index.js';
import type { NexusContext } from '../context.js';

export function auditRoutes(ctx: NexusContext): Route[] {
  const hash = defineRoute({
    path: PATHS.auditHash,
    name: 'audit.hash',
    body: AuditHashRequest,
    guard: guardIdentity('audit.hash', (p) => ctx.ids.isPilotOperator(p)),
    errorShape: ERROR_SHAPES.plain,
    handle: ({ body }): AuditHashResponse => {
      const keys = new AuditKeys(ctx.keys.root());
      try {
        return { hash: keys.hashPath(body.path) };
      } finally {
        keys.destroy();
      }
    },
  });
  return [hash];
}
