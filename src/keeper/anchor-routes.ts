/**
 * The Keeper's additive routes beside SPIKE's two (Nexus only, like `/v1/store/shard`):
 *   POST /v1/store/anchor  {"anchor": b64} → {}   keep Nexus's latest rollback anchor (anchor.ts)
 *   POST /v1/store/status  {} → {"epoch", "id", "pending", "confirmed"?, "anchor"?}   what is held, never a share value
 *                          (`confirmed`: Nexus sent the held share; false: Bootstrap's)
 * Nexus probes `status` every few seconds to re-push a share to a Keeper that restarted empty
 * (or holds another epoch) at once, and reads the anchors for its rollback check.
 */
import { AnchorPutRequest, KeeperStatusRequest, PATHS } from '../protocol/index.js';
import { type GoJsonValue, type Guard, type Route, defineRoute } from '../http/index.js';
import type { AnchorHolder } from './anchor.js';
import type { ShareSlot } from './slot.js';

interface AnchorRouteOptions {
  slot: ShareSlot;
  anchor: AnchorHolder;
  guards: { anchor: Guard<unknown>; status: Guard<unknown> };
  maxBodyBytes: number;
}

export function anchorRoutes(o: AnchorRouteOptions): Route[] {
  const anchor = defineRoute({
    path: PATHS.keeperAnchor,
    body: AnchorPutRequest,
    guard: o.guards.anchor,
    allowBeforeReady: true,
    maxBodyBytes: o.maxBodyBytes,
    handle: ({ body }): GoJsonValue => {
      // Zero-length: the schema's base64 accepts "", the holder refuses it (nothing changes).
      o.anchor.set(body.anchor);
      return {};
    },
  });
  const status = defineRoute({
    path: PATHS.keeperStatus,
    body: KeeperStatusRequest,
    guard: o.guards.status,
    allowBeforeReady: true,
    poll: true, // Nexus asks every few seconds: a healthy answer is logged at debug
    maxBodyBytes: o.maxBodyBytes,
    handle: (): GoJsonValue => {
      const held = o.slot.get();
      const pend = o.slot.getPending();
      // Only public facts leave: the copies of the values are wiped at once.
      held?.value.fill(0);
      pend?.value.fill(0);
      const out: Record<string, GoJsonValue> = { epoch: held?.epoch ?? null, id: held?.id ?? null, pending: pend?.epoch ?? null };
      if (held !== undefined) out['confirmed'] = o.slot.isConfirmed();
      const a = o.anchor.base64();
      if (a !== undefined) out['anchor'] = a;
      return out;
    },
  });
  return [anchor, status];
}
