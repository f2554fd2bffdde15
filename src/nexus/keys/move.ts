/**
 * The two-phase sharing move: new Shamir shares of the SAME root key, for a share refresh
 * (same n, t and Keepers) or a Keeper set / threshold change (new n', t', Keeper list).
 *
 * Steps (each logged and audited; never a share value):
 *  1. draw a fresh random polynomial of degree t'−1 whose constant term is the root key
 *     (`splitSecret`); for a refresh this is the old polynomial plus a random δ with
 *     δ(0) = 0, with the same distribution; make its Feldman commitments;
 *  2. store the new sharing's public data as the PENDING record (pending.ts);
 *  3. send every Keeper of the new list, by position i: its share of the CURRENT sharing
 *     (so a Keeper new to the set, or one that restarted empty, holds the current epoch
 *     too) and then its new share with `pending: true`; all n' must acknowledge, each with
 *     bounded retries and backoff — otherwise the move is abandoned (record cleared) and
 *     the current sharing stays in force;
 *  4. commit: the new sharing becomes the current sharing record in the store;
 *  5. install the new sharing and basis in the key state (the periodic re-push now sends
 *     the new epoch);
 *  6. send every Keeper its new share without `pending`: the Keeper promotes it and drops
 *     the old epoch. A Keeper missed here is fixed by the periodic re-push.
 * A crash between any two steps leaves a recoverable system: until step 4 the current
 * sharing is intact on every Keeper; from step 3 on, every Keeper holds a verified share of
 * the new epoch, and recovery accepts t shares of either (recovery.ts).
 *
 * One move at a time per Nexus and, where other processes write the store (postgres, several
 * workers), across all of them (a lease in the store, move-lease.ts): a second call gets
 * `move_in_progress` (409).
 *
 * A move runs outside the deadline of the request that asked for it (lib/deadline.ts): on
 * PostgreSQL every store call of a request gets what is left of that deadline
 * (SPIKE_NEXUS_DB_OPERATION_TIMEOUT), and a move that spent it waiting for Keepers would
 * otherwise fail at its commit, fail to clear its pending record, and neither renew nor
 * release its move lease (blocking the retry for the lease's time to live). Its store calls
 * keep the database's own timeouts, as a background move's do.
 *
 * A Keeper restarted empty after acknowledging has lost its pending share: the status probe
 * re-pushes it while the move waits (`inFlight()`, probe.ts), and the pre-commit check re-sends it
 * (move-keepers.ts)
 * before the commit, so the commit is never made on a share that no longer exists.
 */
import type { AuditEvents } from '../audit.js';
import { MAX_SHARE_ID, splitSecret, wipeShare, type RootKey, type Share } from '../../crypto/index.js';
import { SpikeError, errInfo, outsideRequest, type Logger } from '../../lib/index.js';
import type { KeeperClient } from '../../keeper/index.js';
import type { Store } from '../../store/index.js';
import { clearPending, commitSharing, loadPending, nextEpoch, storePending, type MoveKind } from './pending.js';
import { loadSharing } from './sharing.js';
import type { RootSharingMove, StagedSharing } from './rotation.js';
import type { KeyState, SharingInfo } from './state.js';
import type { PendingMoveView } from './probe.js';
import { takeMoveLease } from './move-lease.js';
import { MoveKeepers } from './move-keepers.js';

/** The sharing to move to. */
export interface MoveTarget {
  threshold: number;
  shares: number;
  peers: readonly string[];
}

/**
 * Points between the steps (test fault injection hooks in here; see the Nexus entry). A
 * rotation's stage passes the first two too.
 */
export type MoveStep = 'after-pending-store' | 'after-pending-push' | 'after-commit';

type MoveErrorCode = 'move_in_progress' | 'move_not_ready' | 'move_bad_target' | 'move_keepers_unacked' | 'move_superseded' | 'move_keeper_not_configured';

export class MoveError extends SpikeError {
  constructor(code: MoveErrorCode) {
    super(code, {
      move_in_progress: 'a sharing move is already running, or an interrupted one still holds the move lease',
      move_not_ready: 'no root key with a recorded sharing is installed',
      move_bad_target: 'the new sharing needs 1 <= threshold <= shares <= 255 and one Keeper per share',
      move_keepers_unacked: 'not every Keeper acknowledged its new share; the move was abandoned and the current sharing stays',
      move_superseded: 'the stored sharing is not the one this Nexus holds (another Nexus on this database moved it, or a rotation whose commit answer was lost landed); this move was dropped',
      move_keeper_not_configured: 'the sharing names a Keeper outside SPIKE_NEXUS_KEEPER_PEERS, which is never sent a share: move the sharing to the configured Keepers first (spike operator reshare)',
    }[code]);
  }
}

export interface SharingMoverOptions {
  store: Store;
  keys: KeyState;
  client: KeeperClient;
  logger: Logger;
  audit?: AuditEvents;
  /** Called (and awaited) after each step; test fault injection only. */
  onStep?: (step: MoveStep) => void | Promise<void>;
  /** Attempts per Keeper in phase one (default 6) and the backoff between them. */
  attempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Other processes write this store (several workers or instances): moves take the store lease. */
  shared?: boolean;
  /** TTL of that lease (move-lease.ts; SPIKE_NEXUS_MOVE_LEASE_TTL, default 15 s). */
  leaseTtlMs?: number;
}

function validTarget(t: MoveTarget): boolean {
  return Number.isSafeInteger(t.threshold) && Number.isSafeInteger(t.shares) && t.threshold >= 1
    && t.threshold <= t.shares && t.shares <= MAX_SHARE_ID && t.peers.length === t.shares;
}

/** The shares of a move between its pending push and its commit (wiped by the move, not here). */
interface InFlight {
  current: SharingInfo;
  next: SharingInfo;
  shares: readonly Share[];
}

export class SharingMover {
  readonly #o: SharingMoverOptions;
  readonly #keepers: MoveKeepers;
  #running = false;
  #inflight: InFlight | undefined;

  constructor(opts: SharingMoverOptions) {
    this.#o = opts;
    this.#keepers = new MoveKeepers(opts);
  }

  running(): boolean {
    return this.#running;
  }

  /** The cross-process move lease (move-lease.ts), or `move_in_progress` after `waitMs` (default: a requested move's). */
  async #lease(waitMs?: number): Promise<() => void> {
    const release = await takeMoveLease(this.#o.store, this.#o.shared === true, {
      ...(waitMs === undefined ? {} : { waitMs }), ...(this.#o.leaseTtlMs === undefined ? {} : { ttlMs: this.#o.leaseTtlMs }),
    });
    if (!release) throw new MoveError('move_in_progress');
    return release;
  }

  /** The move waiting for its commit (for the status probe: epoch, Keepers, one-shot re-push), else undefined. */
  inFlight(): PendingMoveView | undefined {
    const f = this.#inflight;
    if (!f) return undefined;
    return {
      epoch: f.next.epoch,
      peers: f.next.peers!,
      repush: async (url: string): Promise<boolean> => {
        const i = f.next.peers!.indexOf(url);
        // Not once the key state moved on (a rotation installs the new root before its commit message).
        if (this.#inflight !== f || i < 0 || this.#o.keys.sharing()?.epoch !== f.current.epoch) return false;
        const mine = { id: f.shares[i]!.id, value: Uint8Array.from(f.shares[i]!.value) }; // the move may wipe its own meanwhile
        try {
          await this.#keepers.sendPending(f.current, f.next, mine, url, i + 1);
          return true;
        } catch {
          return false;
        } finally {
          wipeShare(mine);
        }
      },
    };
  }

  /**
   * Runs one move; resolves with the new (current) sharing. `leaseWaitMs`: how long to wait for
   * another process's move lease (default: briefly, as for a move an operator asked for).
   */
  /** Every Keeper of `peers` may be sent shares (it is configured: KeeperClient `shareRecipients`). */
  #configured(peers: readonly string[]): boolean {
    return peers.every((u) => this.#o.client.mayReceiveShares(u));
  }

  async move(kind: MoveKind, target: MoveTarget, opts: { leaseWaitMs?: number } = {}): Promise<SharingInfo> {
    if (this.#running) throw new MoveError('move_in_progress');
    const { keys } = this.#o;
    const current = keys.sharing();
    if (!keys.isReady() || !current) throw new MoveError('move_not_ready');
    if (!validTarget(target)) throw new MoveError('move_bad_target');
    // Refused before anything is stored or sent: such a move could never be acknowledged.
    if (!this.#configured(target.peers)) throw new MoveError('move_keeper_not_configured');
    this.#running = true;
    try {
      return await outsideRequest(async () => {
        const releaseLease = await this.#lease(opts.leaseWaitMs);
        try {
          return await this.#run(kind, current, target);
        } finally {
          releaseLease();
        }
      });
    } finally {
      this.#running = false;
    }
  }

  async #run(kind: MoveKind, current: SharingInfo, target: MoveTarget): Promise<SharingInfo> {
    const { store, keys, logger, audit, onStep } = this.#o;
    await this.#checkStillCurrent(current, kind);
    const epoch = await nextEpoch(store, current.epoch);
    const split = splitSecret(keys.root(), target.threshold, target.shares);
    const next: SharingInfo = {
      epoch, threshold: target.threshold, shares: target.shares, commitments: split.commitments, peers: [...target.peers],
    };
    const log = logger.child({ move: kind, fromEpoch: current.epoch, toEpoch: epoch, threshold: next.threshold, shares: next.shares });
    const fields = { kind, from: current.epoch, to: epoch, threshold: next.threshold, shares: next.shares };
    try {
      log.info('sharing move: started');
      await storePending(store, { kind, sharing: next }, keys.root());
      log.info('sharing move: pending sharing stored');
      audit?.event('sharing.move_pending', fields);
      await onStep?.('after-pending-store');
      await this.#pushAndConfirm(current, next, split.shares, log, fields);
      await commitSharing(store, next, keys.root());
      this.#inflight = undefined;
      log.info('sharing move: new sharing committed in the store');
      audit?.event('sharing.move_committed', fields);
      await onStep?.('after-commit');
      keys.replaceSharing(split.shares.slice(0, next.threshold), next);
      await this.#keepers.pushCommit(next, split.shares, log);
      log.info('sharing move: done; shares and recovery shards of older epochs no longer work');
      audit?.event('sharing.moved', fields);
      return next;
    } finally {
      this.#inflight = undefined;
      split.shares.forEach(wipeShare);
    }
  }

  /**
   * The move as root-key rotation uses it (rotation.ts): `stage` holds the one-move lock,
   * stores a pending sharing of the NEW `root` (same n, t and Keepers) and has every Keeper
   * acknowledge its pending share; the rotation's store switch then records that sharing as
   * current (which voids the pending record: its epoch is no longer above the current one);
   * `promote` sends the commit message. `done` releases the lock and wipes the shares — only
   * when its stage took them: a rotation refused because another move runs (`move_in_progress`)
   * calls `done` too, and must leave that move's lock and in-flight state alone.
   */
  forRotation(): RootSharingMove {
    let held: { next: SharingInfo; shares: Share[] } | undefined;
    let releaseLease: (() => void) | undefined;
    let locked = false;
    const release = (): void => {
      if (!locked) return;
      locked = false;
      this.#inflight = undefined;
      held?.shares.forEach(wipeShare);
      held = undefined;
      const lease = releaseLease;
      releaseLease = undefined;
      if (lease) outsideRequest(lease); // also when `done` runs in a request past its deadline
      this.#running = false;
    };
    return {
      stage: async (root: RootKey): Promise<StagedSharing> => {
        if (this.#running) throw new MoveError('move_in_progress');
        const { store, keys, logger, audit, onStep } = this.#o;
        const current = keys.sharing();
        const peers = current?.peers;
        if (!keys.isReady() || !current || !peers) throw new MoveError('move_not_ready');
        if (!this.#configured(peers)) throw new MoveError('move_keeper_not_configured');
        this.#running = true;
        locked = true;
        // The lease, its renewals and the stage's store calls run outside the request (module comment).
        return outsideRequest(async () => {
          try {
            releaseLease = await this.#lease();
            await this.#checkStillCurrent(current, 'rotate');
            const epoch = await nextEpoch(store, current.epoch);
            const split = splitSecret(root, current.threshold, current.shares);
            const next: SharingInfo = { ...current, epoch, commitments: split.commitments, peers: [...peers] };
            held = { next, shares: split.shares };
            const fields = { kind: 'rotate', from: current.epoch, to: epoch, threshold: next.threshold, shares: next.shares };
            const log = logger.child({ move: 'rotate', fromEpoch: current.epoch, toEpoch: epoch });
            await storePending(store, { kind: 'rotate', sharing: next }, root);
            audit?.event('sharing.move_pending', fields);
            await onStep?.('after-pending-store');
            await this.#pushAndConfirm(current, next, split.shares, log, fields);
            return { sharing: next, basis: split.shares.slice(0, next.threshold).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) })) };
          } catch (e) {
            release();
            throw e;
          }
        });
      },
      promote: async (): Promise<void> => {
        this.#inflight = undefined;
        if (held) await this.#keepers.pushCommit(held.next, held.shares, this.#o.logger.child({ move: 'rotate', toEpoch: held.next.epoch }));
      },
      done: release,
    };
  }

  /**
   * Phase one on every Keeper (move-keepers.ts), then, with the move in flight, the check that
   * each still holds its new share and that no other Nexus moved the sharing meanwhile. A
   * Keeper that did not acknowledge (or lost its share) abandons the move: the pending record
   * is cleared and the current sharing stays.
   */
  async #pushAndConfirm(current: SharingInfo, next: SharingInfo, shares: Share[], log: Logger, fields: Record<string, string | number>): Promise<void> {
    const unacked = await this.#keepers.pushPending(current, next, shares, log);
    if (unacked.length > 0) {
      await this.#abandon(next.epoch, unacked, log, fields, 'sharing move abandoned: not every Keeper acknowledged its pending share; the current sharing stays; rerun when the Keepers are up');
    }
    log.info('sharing move: every Keeper holds its pending share');
    this.#inflight = { current, next, shares };
    await this.#o.onStep?.('after-pending-push');
    const missing = await this.#keepers.confirmHeld(current, next, shares, log);
    if (missing.length > 0) {
      await this.#abandon(next.epoch, missing, log, fields, 'sharing move abandoned: a Keeper no longer holds its new share (restarted?); the current sharing stays; rerun');
    }
    await this.#checkNotSuperseded(current, next, log, fields);
  }

  async #abandon(epoch: number, unacked: number[], log: Logger, fields: Record<string, string | number>, why: string): Promise<never> {
    await clearPending(this.#o.store, epoch).catch((e: unknown) => log.error({ err: errInfo(e) }, 'sharing move: could not clear the pending record'));
    log.error({ unacked }, why);
    this.#o.audit?.event('sharing.move_abandoned', { ...fields, unacked: unacked.join(',') });
    throw new MoveError('move_keepers_unacked');
  }

  /**
   * Before anything is stored or sent: the store must still record the sharing this process
   * holds. Otherwise the Keepers' pending shares may be the only copies of the store's key (a
   * root-key rotation whose commit answer was lost landed after all), and phase one would
   * replace them; another instance's completed move is caught here too. Nothing was changed.
   */
  async #checkStillCurrent(current: SharingInfo, kind: MoveKind): Promise<void> {
    const stored = await loadSharing(this.#o.store);
    if (stored?.epoch === current.epoch) return;
    this.#o.logger.error({ move: kind, heldEpoch: current.epoch, storedEpoch: stored?.epoch }, 'sharing move refused: the store records another sharing than this Nexus holds; nothing was sent to the Keepers (restart this Nexus if it persists)');
    this.#o.audit?.event('sharing.move_abandoned', { kind, from: current.epoch, reason: 'superseded' });
    throw new MoveError('move_superseded');
  }

  /**
   * Several Nexus on one database: if another instance moved the sharing or stored its own
   * pending sharing meanwhile, this move must not commit over it.
   */
  async #checkNotSuperseded(current: SharingInfo, next: SharingInfo, log: Logger, fields: Record<string, string | number>): Promise<void> {
    const { store, audit } = this.#o;
    const stored = await loadSharing(store);
    const pending = await loadPending(store, current.epoch);
    const mine = pending !== undefined && Buffer.from(pending.sharing.commitments.toBytes()).equals(Buffer.from(next.commitments.toBytes()));
    if (stored?.epoch === current.epoch && mine) return;
    log.error('sharing move dropped: another Nexus on this database changed the sharing meanwhile');
    audit?.event('sharing.move_abandoned', { ...fields, reason: 'superseded' });
    throw new MoveError('move_superseded');
  }
}
