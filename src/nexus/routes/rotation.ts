/**
 * `POST /v1/operator/rotate-root-key` (additive; Pilot superuser only, never policies:
 * `ctx.guards.rotateRootKey`). Body `{}`. Runs a root-key rotation (keys/rotation.ts) and
 * answers `{"epoch":e,"storageKeyId":k,"cipherVersion":v}` once the store switched and the
 * Keepers were asked to promote their new shares; re-encryption then runs in the background
 * (metrics `spike_reencrypt_*`, `spike_keyring_*`).
 *
 * Errors (stable `err` codes, nothing changed):
 *   - another rotation running → 409 `api_conflict`, reason `rotation_in_progress`;
 *   - no key yet → 503 `state_not_ready`;
 *   - memory or lite backend → 400 `api_bad_request`, reason `rotation_unsupported`;
 *   - no sharing move wired in → 400 `api_bad_request`, reason `rotation_unavailable`;
 *   - a Keeper did not acknowledge its pending share, or the store failed → the error of that
 *     step (store: 503 with the cause); the current root key stays in force.
 */
import { ApiError, ERR, badRequest, notReady, ERROR_SHAPES, PATHS, RecoverRequest } from '../../protocol/index.js';
import { type Route, defineRoute } from '../../http/index.js';
import { StoreError, custodyOf } from '../../store/index.js';
import type { NexusContext } from '../context.js';
import { MoveError } from '../keys/move.js';
import { RotationError } from '../keys/rotation.js';
import { moveFailure } from './sharing.js';
import { viaStore } from './store-errors.js';

export function rotationRoutes(ctx: NexusContext): Route[] {
  const rotate = defineRoute({
    path: PATHS.rotateRootKey,
    name: 'operator.rotate_root_key',
    body: RecoverRequest,
    guard: ctx.guards.rotateRootKey,
    errorShape: ERROR_SHAPES.plain,
    answersWhenDone: true, // its stage is a sharing move: every Keeper acknowledges, with retries
    handle: async ({ log }) => {
      const rotation = ctx.rotation;
      if (!rotation) throw badRequest('rotation_unsupported', 'root-key rotation needs a persistent store (sqlite or postgres)');
      // Several workers: once the switch committed (this process's storage generation moved)
      // or may have (a store answer lost after COMMIT), the other workers' key state is stale:
      // they are replaced. A rotation refused before its switch changes nothing for them.
      const generation = (): number | undefined => custodyOf(ctx.store)?.keyring.storage.current;
      const before = generation();
      let unknown = false;
      try {
        const r = await viaStore(log, () => rotation.rotate());
        return { epoch: r.epoch, storageKeyId: r.storageKeyId, cipherVersion: r.cipherVersion };
      } catch (e) {
        // viaStore has mapped a store failure to its answer already: look at the cause.
        const cause = e instanceof ApiError ? e.cause : e;
        if (cause instanceof StoreError && cause.outcome === 'unknown') unknown = true;
        if (e instanceof RotationError) {
          if (e.code === 'rotation_in_progress') throw new ApiError(ERR.conflict, 'a root-key rotation is already running', { expose: true, reason: e.code });
          if (e.code === 'rotation_not_ready') throw notReady();
          throw badRequest(e.code, e.message);
        }
        if (e instanceof MoveError) throw moveFailure(e);
        if (e instanceof ApiError || e instanceof StoreError) throw e;
        throw new ApiError(ERR.internal, 'root-key rotation failed; the current root key stays in force', { reason: 'rotation_failed', expose: true, cause: e });
      } finally {
        if (unknown || generation() !== before) ctx.othersStale?.('root_rotation');
      }
    },
  });
  return [rotate];
}
