/**
 * `POST /v1/operator/accept-rollback` (additive; Pilot superuser only; docs/key-lifecycle.md).
 * Allowed before ready: it is the way out of the refusal after a detected state rollback.
 * Refused (rollback detected, not yet accepted) → the store's counter moves above the
 * Keepers', the new anchor is pushed, the `rollback.accepted` audit event is written, the
 * policies are reloaded from the store as it now is, Nexus serves:
 * `{"accepted":true,"state":"serving","storeCounter":s,"keeperCounter":k,"counter":c}`.
 * Nothing to accept → `{"accepted":false,"state":"serving"|"checking"}`, nothing changes.
 * Without a root key → 503 `state_not_ready`; memory and lite backends (no anchor) → 400.
 */
import { type Route, defineRoute, guardIdentity } from '../../http/index.js';
import { AcceptRollbackRequest, ERROR_SHAPES, PATHS, badRequest, notReady, type AcceptRollbackResponse } from '../../protocol/index.js';
import type { NexusContext } from '../context.js';
import { viaStore } from './store-errors.js';

export function acceptRollbackRoutes(ctx: NexusContext): Route[] {
  const accept = defineRoute({
    path: PATHS.acceptRollback,
    name: 'operator.accept_rollback',
    body: AcceptRollbackRequest,
    guard: guardIdentity('operator.accept_rollback', (p) => ctx.ids.isPilotOperator(p)),
    allowBeforeReady: true,
    errorShape: ERROR_SHAPES.plain,
    handle: async ({ log }): Promise<AcceptRollbackResponse> => {
      const guard = ctx.rollback;
      if (!guard) throw badRequest('rollback_unsupported', 'not available with this storage backend (nothing persists an anchor)');
      if (!ctx.keys.isReady()) throw notReady();
      const r = await viaStore(log, () => guard.accept());
      if (!r) return { accepted: false, state: guard.state };
      // The store went back: its policies are the ones in force from the next request on (the
      // engine still held the newer set). A failed reload empties the engine and retries.
      await ctx.policies.reload().catch((e: unknown) => ctx.policies.failClosed(0, e));
      // Several workers: the others still refuse (their refusal lives in their memory); they are replaced.
      ctx.othersStale?.('rollback_accepted');
      return { accepted: true, state: guard.state, ...r };
    },
  });
  return [accept];
}
