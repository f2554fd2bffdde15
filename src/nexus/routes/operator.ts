/**
 * Break-the-glass routes (D1, D6, D11; OPR-*, FI-05, FI-20; the operator's guide is
 * docs/recovery.md):
 *
 *   POST /v1/operator/recover  — recover role only (`ctx.guards.recover`; never policies).
 *     Answers all N shares of the current sharing, `{"shards":{"1":[32 ints],…},"epoch":e}`
 *     (`epoch` additive), each computed from the in-memory basis with `keys.shareFor`. The share
 *     buffers are zeroed after the answer is written (and the router zeroes the JSON body once
 *     flushed). Exempt from the readiness gate as in SPIKE, but without a key it answers
 *     **503 `state_not_ready`** (SPIKE: 500, which its SDK reports as a connection error; 503 is
 *     what a SPIKE client understands as "not ready": D1). Memory backend → 400.
 *
 *   POST /v1/operator/restore  — restore role only; one shard per call; allowed before ready
 *     (it is the way out of not-ready). Each shard `{id, shard[, epoch]}`:
 *       1. `id` must be 1..N of the recorded sharing (OPR-08; SPIKE allowed up to 1000);
 *       2. it must verify against the stored Feldman commitments (D6) — a shard of another
 *          key, a corrupted shard, a value ≥ the group order: **400**, not counted, logged
 *          with the caller's SPIFFE ID (never the value) (OPR-05/06/09);
 *       3. Nexus already holds a key (healthy, or restore already completed): SPIKE's
 *          "already restored" acknowledgement `{collected:T, remaining:0, restored:true}`;
 *          nothing is stored, the running key is never replaced, Keepers are untouched
 *          (OPR-03/07; gaps A1: SPIKE replaced the key);
 *       4. the same shard again: acknowledged with unchanged counts (OPR-04);
 *       5. else it is kept (memory only) and the answer says "collected k of T"; at the T-th
 *          distinct shard: combine → `adoptKey` (key-check record first; a wrong key is never
 *          installed) → ready → shares re-pushed to every Keeper (`ctx.sync.pushNow()`, waited
 *          for at most {@link PUSH_WAIT_MS}; Keepers that are down get theirs on the next push,
 *          OPR-16). The collected shards are zeroed once used, on a failed rebuild, and die
 *          with the process (FI-20).
 *     Calls are serialised (OPR-11: one reconstruction, consistent counts). A store without a
 *     recorded sharing (never bootstrapped) has nothing to restore: 400 `no_sharing`. Memory
 *     backend → 400.
 *
 * Every other failure is typed, never "unhandled error in request handler":
 *   - the store fails (disk full, read-only, database unreachable…) while reading the sharing
 *     record or adopting the key → the store mapping (store-errors.ts): 503 `state_not_ready`
 *     with `message` naming the cause, e.g. "store unavailable: disk full"; as after any
 *     failed rebuild the collected shards are wiped: fix the store, then submit them again;
 *   - the stored sharing record is damaged (not decodable, threshold mismatch) → **500
 *     `api_internal_error`**, `message` "store integrity failure", reason
 *     `system_record_damaged`, logged as an alarm. 500, not 503: the record does not heal by
 *     waiting, and 503 would tell a client to wait or to restore — which is this call; the
 *     fix is the database (restore it from a backup).
 *   - a rebuilt key the key-check record refuses, or a stored sharing of another key → 400
 *     `shards_mismatch` as before.
 */
import { ApiError, ERR, STORE_FAILURE_MESSAGE, badRequest, conflict, notReady, Bytes32, ERROR_SHAPES, PATHS, RecoverRequest, RestoreRequest, intKeyedMap, validateRestoreId, type RestoreResponse } from '../../protocol/index.js';
import { type Route, defineRoute } from '../../http/index.js';
import { combineShares, wipeShare, type Share } from '../../crypto/index.js';
import { errInfo, type Logger } from '../../lib/index.js';
import type { NexusContext } from '../context.js';
import type { SharingInfo } from '../keys/state.js';
import { AdoptError, adoptKey, loadSharing } from '../keys/sharing.js';
import { StoreError } from '../../store/index.js';
import { viaStore } from './store-errors.js';

/** How long a completing restore waits for the Keeper re-push before answering. */
const PUSH_WAIT_MS = 3000;

function memoryRefused(): ApiError {
  return badRequest('memory_backend', 'not available with the memory backend');
}

/** The restore shards collected so far (memory only), for one sharing. */
class RestoreSession {
  #digest: string | undefined;
  readonly #shares = new Map<number, Uint8Array>();

  /** Switches to `sharing`, dropping shards collected for another one. */
  bind(sharing: SharingInfo): void {
    const d = Buffer.from(sharing.commitments.digest()).toString('hex');
    if (d !== this.#digest) {
      this.wipe();
      this.#digest = d;
    }
  }

  get size(): number {
    return this.#shares.size;
  }

  get(id: number): Uint8Array | undefined {
    return this.#shares.get(id);
  }

  add(id: number, value: Uint8Array): void {
    this.#shares.set(id, Uint8Array.from(value));
  }

  basis(threshold: number): Share[] {
    return [...this.#shares.entries()].slice(0, threshold).map(([id, value]) => ({ id, value }));
  }

  wipe(): void {
    for (const v of this.#shares.values()) v.fill(0);
    this.#shares.clear();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** 500 for a stored sharing record that cannot be decoded (see the module doc). */
function systemRecordDamaged(log: Logger, e: unknown): ApiError {
  log.error({ alarm: 'system_record_damaged', record: 'sharing' }, 'the stored sharing record is damaged');
  return new ApiError(ERR.internal, STORE_FAILURE_MESSAGE.integrity, { reason: 'system_record_damaged', expose: true, cause: e });
}

/** The stored sharing, with store failures and a damaged record mapped to typed errors. */
async function storedSharing(ctx: NexusContext, log: Logger): Promise<SharingInfo | undefined> {
  try {
    return await viaStore(log, () => loadSharing(ctx.store));
  } catch (e) {
    if (e instanceof AdoptError && e.code === 'sharing_record_malformed') throw systemRecordDamaged(log, e);
    throw e;
  }
}

export function operatorRoutes(ctx: NexusContext): Route[] {
  const { keys, store } = ctx;
  const memory = store.kind === 'memory';
  const session = new RestoreSession();
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs `fn` after every earlier restore call finished. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const recover = defineRoute({
    path: PATHS.recover,
    name: 'operator.recover',
    body: RecoverRequest,
    guard: ctx.guards.recover,
    allowBeforeReady: true,
    errorShape: ERROR_SHAPES.recover,
    handle: async ({ afterSend, log }) => {
      if (memory) throw memoryRefused();
      const sharing = keys.sharing();
      if (!keys.isReady()) throw notReady();
      if (!sharing) throw new ApiError(ERR.internal, 'no sharing', { reason: 'no_sharing' });
      // Another Nexus on this database moved the sharing: never export the old epoch's
      // shards; switch first (best effort: a store that cannot be read does not block this).
      const stored = await loadSharing(store).catch(() => undefined);
      if (stored && stored.epoch !== sharing.epoch) {
        void ctx.sync?.pushNow();
        throw notReady();
      }
      const shares: Share[] = [];
      afterSend(() => {
        for (const s of shares) wipeShare(s);
      });
      for (let id = 1; id <= sharing.shares; id++) shares.push(keys.shareFor(id));
      log.info({ shares: shares.length, epoch: sharing.epoch }, 'recovery shards exported');
      return {
        shards: intKeyedMap(shares.map((s) => [s.id, new Bytes32(s.value)] as const)),
        epoch: sharing.epoch,
      };
    },
  });

  const restore = defineRoute({
    path: PATHS.restore,
    name: 'operator.restore',
    body: RestoreRequest,
    guard: ctx.guards.restore,
    allowBeforeReady: true,
    errorShape: ERROR_SHAPES.restore,
    handle: ({ body, afterSend, log }) => {
      afterSend(() => body.shard.fill(0));
      if (memory) throw memoryRefused();
      // The shards are collected in one process's memory, and each `spike operator restore`
      // is a new connection that the primary may hand to another worker: never complete.
      if (ctx.cfg.workers > 1) throw badRequest('restore_needs_one_worker', 'restore collects shards in one process: restart Nexus with SPIKE_NEXUS_WORKERS=1 to restore');
      return serial(() => restoreOne(body.id, body.shard, body.epoch, log));
    },
  });

  async function restoreOne(id: number, value: Uint8Array, epoch: number | undefined, log: Logger): Promise<RestoreResponse> {
    const sharing = keys.sharing() ?? (await storedSharing(ctx, log));
    if (!sharing) throw badRequest('no_sharing', 'this store has no recorded key sharing; there is nothing to restore');
    const t = sharing.threshold;
    validateRestoreId(id, sharing.shares);
    if (epoch !== undefined && epoch !== sharing.epoch) {
      log.warn({ shardId: id, reason: 'stale_epoch' }, 'restore shard refused');
      ctx.audit.event('restore.shard_refused', { shardId: id, reason: 'stale_epoch' });
      throw badRequest('stale_epoch', 'shard is of another epoch');
    }
    if (!sharing.commitments.verifyShare({ id, value })) {
      log.warn({ shardId: id, reason: 'shard_unverified' }, 'restore shard refused');
      ctx.audit.event('restore.shard_refused', { shardId: id, reason: 'shard_unverified' });
      throw badRequest('shard_unverified', `shard does not match the recorded commitments (sharing epoch ${sharing.epoch}; a store from a backup taken before a share refresh needs the shards exported before that refresh)`);
    }
    if (keys.isReady()) {
      log.info({ shardId: id }, 'restore shard acknowledged: a root key is already installed');
      return { collected: t, remaining: 0, restored: true };
    }
    session.bind(sharing);
    const held = session.get(id);
    if (held) {
      // Cannot differ under D6 (both verified); kept as a guard.
      if (!sameBytes(held, value)) throw conflict('a different shard with this id was already collected');
      return { collected: session.size, remaining: t - session.size, restored: false };
    }
    session.add(id, value);
    log.info({ shardId: id, collected: session.size, threshold: t }, 'restore shard collected');
    ctx.audit.event('restore.shard_accepted', { shardId: id, collected: session.size, threshold: t });
    if (session.size < t) return { collected: session.size, remaining: t - session.size, restored: false };

    const basis = session.basis(t);
    let root;
    try {
      root = combineShares(basis, t);
    } catch (e) {
      session.wipe();
      log.error({ err: errInfo(e) }, 'restore: shards do not combine');
      throw badRequest('shards_mismatch', 'the collected shards do not rebuild a key; submit them again');
    }
    try {
      await adoptKey(store, keys, root, basis, sharing, { trust: { configuredPeers: ctx.cfg.keeperPeers, acceptUntagged: ctx.cfg.acceptUntaggedSharing } });
    } catch (e) {
      root.destroy();
      session.wipe();
      if (keys.isReady()) return { collected: t, remaining: 0, restored: true }; // Keeper recovery won the race
      if (e instanceof StoreError) {
        // The store failed, not the shards: keep nothing half-done, name the cause (503 …).
        await viaStore(log, () => Promise.reject(e));
      }
      if (e instanceof AdoptError && e.code === 'sharing_record_untagged') throw new ApiError(ERR.notReady, e.message, { reason: e.code, expose: true, cause: e });
      if (e instanceof AdoptError && e.code !== 'key_check_failed' && e.code !== 'sharing_mismatch') throw systemRecordDamaged(log, e);
      if (!(e instanceof AdoptError)) {
        log.error({ err: errInfo(e) }, 'restore: adopting the rebuilt key failed');
        throw new ApiError(ERR.internal, 'internal error', { reason: 'restore_failed', cause: e });
      }
      log.error({ err: errInfo(e) }, 'restore: rebuilt key refused by the key-check record');
      throw badRequest('shards_mismatch', 'the collected shards do not rebuild this store\'s key; submit them again');
    }
    session.wipe();
    log.info({ epoch: sharing.epoch }, 'root key restored by operator');
    ctx.audit.event('key.restored', { epoch: sharing.epoch });
    const push = ctx.sync?.pushNow();
    if (push) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([push, new Promise<void>((r) => { timer = setTimeout(r, PUSH_WAIT_MS); })]);
      clearTimeout(timer);
    }
    return { collected: t, remaining: 0, restored: true };
  }

  return [recover, restore];
}
