/**
 * The Keeper's HTTP routes (SPIKE's Keeper API) over the project's guarded router:
 *   POST /v1/store/contribute  ← Nexus or Bootstrap: store (or, Bootstrap, stage) the share (slot rules in slot.ts)
 *   POST /v1/store/shard       ← Nexus only: the held share, with its id/epoch/commitments
 *                                (and the rollback anchor, when one is held)
 *   POST /v1/store/anchor, /v1/store/status  ← Nexus only (additive; anchor-routes.ts)
 * The handshake already refuses every identity but Nexus and Bootstrap;
 * the route guards check again. Bodies are capped at 8 KiB (KPR-09).
 */
import { ApiError, ERR, badRequest, ERROR_SHAPES, PATHS, ShareMessage, ShareWireError, toWireShare, type Recognisers } from '../protocol/index.js';
import { Bytes32, type GoJsonValue, type RequestObserver, type RouterHandler, createRouter, defineRoute, s } from '../http/index.js';
import type { Logger } from '../lib/index.js';
import { keeperGuards } from './guards.js';
import { KeeperSlotError, type ShareSlot } from './slot.js';
import { AnchorHolder } from './anchor.js';
import { anchorRoutes } from './anchor-routes.js';

const KEEPER_MAX_BODY_BYTES = 8 * 1024;

export function keeperRouter(slot: ShareSlot, ids: Recognisers, logger: Logger, observer?: RequestObserver, anchor = new AnchorHolder()): RouterHandler {
  const guards = keeperGuards(ids);
  const contribute = defineRoute({
    path: PATHS.keeperContribute,
    body: ShareMessage,
    guard: guards.contribute,
    allowBeforeReady: true,
    maxBodyBytes: KEEPER_MAX_BODY_BYTES,
    handle: ({ peer, body, log }): GoJsonValue => {
      let w;
      try {
        w = toWireShare(body);
      } catch (e) {
        if (e instanceof ShareWireError) throw badRequest('invalid_commitments', 'commitments are malformed');
        throw e;
      }
      const from = ids.isNexus(peer) ? 'nexus' : 'bootstrap';
      try {
        const outcome = slot.contribute(from, {
          value: w.value, id: w.id, epoch: w.epoch, commitments: w.commitments, pending: w.pending === true, staged: w.staged === true,
        });
        log.info({ outcome, from, epoch: w.epoch ?? 1, shareId: w.id ?? null, pending: w.pending === true, staged: w.staged === true }, 'share contributed');
        return {};
      } catch (e) {
        if (e instanceof KeeperSlotError) {
          // Sender role and epoch are public; the share never appears.
          log.warn({ reason: e.code, from, epoch: w.epoch ?? 1, shareId: w.id ?? null }, 'share refused');
          if (e.status === 409) throw new ApiError(ERR.conflict, e.message, { reason: e.code, expose: true });
          throw badRequest(e.code, e.message);
        }
        throw e;
      } finally {
        w.value.fill(0);
        w.pendingShare?.value.fill(0);
      }
    },
  });
  const shard = defineRoute({
    path: PATHS.keeperShard,
    body: s.empty(),
    guard: guards.shard,
    allowBeforeReady: true,
    maxBodyBytes: KEEPER_MAX_BODY_BYTES,
    errorShape: ERROR_SHAPES.keeperShard,
    handle: (): GoJsonValue => {
      const held = slot.get();
      if (!held) throw badRequest('no_shard', 'no share held yet');
      const out: Record<string, GoJsonValue> = { shard: new Bytes32(held.value), Err: '', epoch: held.epoch };
      if (held.id !== undefined) out['id'] = held.id;
      if (held.commitments) out['commitments'] = Buffer.from(held.commitments.toBytes()).toString('base64');
      const a = anchor.base64();
      if (a !== undefined) out['anchor'] = a;
      const pend = slot.getPending();
      if (pend) {
        const p: Record<string, GoJsonValue> = { shard: new Bytes32(pend.value), epoch: pend.epoch };
        if (pend.id !== undefined) p['id'] = pend.id;
        if (pend.commitments) p['commitments'] = Buffer.from(pend.commitments.toBytes()).toString('base64');
        out['pending'] = p;
      }
      // The router encodes the result synchronously right after this handler resolves;
      // wipe the copies on the next macrotask, after encoding.
      setImmediate(() => {
        held.value.fill(0);
        pend?.value.fill(0);
      });
      return out;
    },
  });
  const extra = anchorRoutes({ slot, anchor, guards, maxBodyBytes: KEEPER_MAX_BODY_BYTES });
  return createRouter([contribute, shard, ...extra], { isReady: () => true, logger, maxBodyBytes: KEEPER_MAX_BODY_BYTES, ...(observer ? { observer } : {}) });
}
