/**
 * `POST /v1/operator/refresh-shares` (additive; superuser only; docs/key-lifecycle.md):
 * runs a proactive share refresh — a two-phase sharing move to new shares of the same
 * root key, same n, t and Keepers (keys/move.ts) — and answers with the new epoch once
 * every Keeper holds its new share. Recovery shards exported before it no longer work.
 *
 * Errors: memory backend → 400 `memory_backend`; a move already running → 409
 * `api_conflict` (reason `move_in_progress`); not every Keeper acknowledged → 503
 * `state_not_ready` (reason `move_keepers_unacked`; the move was abandoned, the current
 * sharing stays); no key yet → the router's 503.
 *
 * `POST /v1/operator/reshare` (additive; superuser only): the Keeper set / threshold change
 * Nexus otherwise runs only at start-up, on demand — the same two-phase move to this
 * Nexus's configured SPIKE_NEXUS_KEEPER_PEERS / SHAMIR_SHARES / SHAMIR_THRESHOLD
 * (keys/tasks.ts `reshareNow`). Answers `{changed, epoch, threshold, shares}`; `changed:
 * false` when the stored sharing already matches the settings (nothing moved, recovery
 * shards still valid). Same errors as refresh-shares.
 */
import {
  ApiError, ERR, ERROR_SHAPES, PATHS, RefreshSharesRequest, ReshareRequest, badRequest, type RefreshSharesResponse, type ReshareResponse,
} from '../../protocol/index.js';
import { type Route, defineRoute, guardIdentity } from '../../http/index.js';
import type { NexusContext } from '../context.js';
import { MoveError } from '../keys/move.js';
import { reshareNow } from '../keys/tasks.js';
import { viaStore } from './store-errors.js';

export function moveFailure(e: MoveError): ApiError {
  switch (e.code) {
    case 'move_in_progress':
    case 'move_superseded':
    case 'move_keeper_not_configured': return new ApiError(ERR.conflict, e.message, { reason: e.code, expose: true });
    case 'move_bad_target': return badRequest(e.code, e.message);
    default: return new ApiError(ERR.notReady, e.message, { reason: e.code, expose: true });
  }
}

/** Runs a sharing move through the store's error mapping; a refused move gets its API answer. */
async function viaMove<T>(log: Parameters<typeof viaStore>[0], run: () => Promise<T>): Promise<T> {
  try {
    return await viaStore(log, run);
  } catch (e) {
    if (e instanceof MoveError) throw moveFailure(e);
    throw e;
  }
}

/**
 * The mover, where sharing moves can be made: not with the memory backend (no sharing) nor the
 * lite one, whose sharing record lives in memory only: a Nexus restarted after a move would
 * find no record, accept only the first (Bootstrap) epoch, and could not rebuild the key from
 * Keepers that all hold the new one.
 */
function movable(ctx: NexusContext): NonNullable<NexusContext['mover']> {
  if (ctx.store.kind === 'lite') throw badRequest('lite_backend', 'not available with the lite backend: its sharing record is kept in memory only, so a restarted Nexus could not recover a moved sharing');
  if (!ctx.mover) throw badRequest('memory_backend', 'not available with the memory backend');
  return ctx.mover;
}

export function sharingRoutes(ctx: NexusContext): Route[] {
  const refresh = defineRoute({
    path: PATHS.refreshShares,
    name: 'operator.refresh_shares',
    body: RefreshSharesRequest,
    guard: guardIdentity('operator.refresh_shares', (p) => ctx.ids.isPilotOperator(p)),
    errorShape: ERROR_SHAPES.plain,
    answersWhenDone: true, // a move answers once every Keeper acknowledged, with retries
    handle: async ({ log }): Promise<RefreshSharesResponse> => {
      const mover = movable(ctx);
      const current = ctx.keys.sharing();
      if (!current) throw badRequest('memory_backend', 'not available with the memory backend');
      log.info({ epoch: current.epoch }, 'share refresh requested');
      const next = await viaMove(log, () => mover.move('refresh', {
        threshold: current.threshold, shares: current.shares, peers: current.peers ?? ctx.cfg.keeperPeers,
      }));
      return { epoch: next.epoch, threshold: next.threshold, shares: next.shares };
    },
  });
  const reshare = defineRoute({
    path: PATHS.reshare,
    name: 'operator.reshare',
    body: ReshareRequest,
    guard: guardIdentity('operator.reshare', (p) => ctx.ids.isPilotOperator(p)),
    errorShape: ERROR_SHAPES.plain,
    answersWhenDone: true, // a move answers once every Keeper acknowledged, with retries
    handle: async ({ log }): Promise<ReshareResponse> => {
      const mover = movable(ctx);
      if (!ctx.keys.sharing()) throw badRequest('memory_backend', 'not available with the memory backend');
      const configured = { threshold: ctx.cfg.shamir.threshold, shares: ctx.cfg.shamir.shares, peers: ctx.cfg.keeperPeers };
      const r = await viaMove(log, () => reshareNow({ mover, keys: ctx.keys, configured, logger: log }));
      return { changed: r.changed, epoch: r.sharing.epoch, threshold: r.sharing.threshold, shares: r.sharing.shares };
    },
  });
  return [refresh, reshare];
}
