/**
 * The additive audit routes (superuser only; docs/audit.md). Both work whether or not this
 * Nexus writes an audit trail: the keys come from the root key, shared by every Nexus on one
 * store, and are wiped after each call.
 *
 * - `POST /v1/audit/hash`: the HMAC a secret path has in the audit trail (`audit-path/v1`),
 *   so an operator can search the trail for one secret without the trail holding the path.
 * - `POST /v1/audit/verify`: checks the MACs of a bounded batch of audit lines
 *   (`audit-mac/v1`) and answers only `{"verified":n,"firstInvalid":i|null}` — how many
 *   leading lines verified and the index of the first that does not — never a MAC or anything
 *   else derived from the key, so the answer cannot help forge an entry (MACs are compared in
 *   constant time). The caller checks the chain and the order itself.
 */
import { AuditKeys, firstInvalidMac } from '../../audit/index.js';
import { type Route, defineRoute, guardIdentity } from '../../http/index.js';
import {
  AUDIT_VERIFY_LIMITS, AuditHashRequest, AuditVerifyRequest, ERROR_SHAPES, PATHS, type AuditHashResponse, type AuditVerifyResponse,
} from '../../protocol/index.js';
import type { NexusContext } from '../context.js';

export function auditRoutes(ctx: NexusContext): Route[] {
  const superuser = (name: string) => guardIdentity(name, (p) => ctx.ids.isPilotOperator(p));
  const withKeys = <T>(use: (keys: AuditKeys) => T): T => {
    const keys = new AuditKeys(ctx.keys.root());
    try {
      return use(keys);
    } finally {
      keys.destroy();
    }
  };
  const hash = defineRoute({
    path: PATHS.auditHash,
    name: 'audit.hash',
    body: AuditHashRequest,
    guard: superuser('audit.hash'),
    errorShape: ERROR_SHAPES.plain,
    handle: ({ body }): AuditHashResponse => withKeys((keys) => ({ hash: keys.hashPath(body.path) })),
  });
  const verify = defineRoute({
    path: PATHS.auditVerify,
    name: 'audit.verify',
    body: AuditVerifyRequest,
    guard: superuser('audit.verify'),
    errorShape: ERROR_SHAPES.plain,
    maxBodyBytes: AUDIT_VERIFY_LIMITS.maxBodyBytes,
    handle: ({ body }): AuditVerifyResponse => withKeys((keys) => {
      const firstInvalid = firstInvalidMac(keys, body.entries);
      return { verified: firstInvalid ?? body.entries.length, firstInvalid };
    }),
  });
  return [hash, verify];
}
