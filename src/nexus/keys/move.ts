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
 * A Keeper restarted empty after acknowledging has lost its pending share: the status probe
 * re-pushes it while the move waits (`inFlight()`, probe.ts), and #confirmHeld re-sends it
 * before the commit, so the commit is never made on a share that no longer exists.
 */
import type { AuditEvents } from '../audit.js';
import { MAX_SHARE_ID, splitSecret, wipeShare, type RootKey, type Share } from '../../crypto/index.js';
import { Backoff, SpikeError, errInfo, type Logger } from '../../lib/index.js';
import type { KeeperClient } from '../../keeper/index.js';
import type { Store } from '../../store/index.js';
import { clearPending, commitSharing, loadPending, nextEpoch, storePending, type MoveKind } from './pending.js';
import { loadSharing } from './sharing.js';
import type { RootSharingMove, StagedSharing } from './rotation.js';
import type { KeyState, SharingInfo } from './state.js';
import type { PendingMoveView } from './probe.js';
import { takeMoveLease } from './move-lease.js';

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

type MoveErrorCode = 'move_in_progress' | 'move_not_ready' | 'move_bad_target' | 'move_keepers_unacked' | 'move_superseded';

export class MoveError extends SpikeError {
  constructor(code: MoveErrorCode) {
    super(code, {
      move_in_progress: 'a sharing move is already running',
      move_not_ready: 'no root key with a recorded sharing is installed',
      move_bad_target: 'the new sharing needs 1 <= threshold <= shares <= 255 and one Keeper per share',
      move_keepers_unacked: 'not every Keeper acknowledged its new share; the move was abandoned and the current sharing stays',
      move_superseded: 'another Nexus on this database changed the sharing meanwhile; this move was dropped',
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
}

function validTarget(t: MoveTarget): boolean {
  return Number.isSafeInteger(t.threshold) && Number.isSafeInteger(t.shares) && t.threshold >= 1
    && t.threshold <= t.shares && t.shares <= MAX_SHARE_ID && t.peers.length === t.shares;
}

/** How long the pre-commit status check waits for each Keeper. */
const CONFIRM_TIMEOUT_MS = 2000;

/** The shares of a move between its pending push and its commit (wiped by the move, not here). */
interface InFlight {
  current: SharingInfo;
  next: SharingInfo;
  shares: readonly Share[];
}

export class SharingMover {
  readonly #o: SharingMoverOptions;
  #running = false;
  #inflight: InFlight | undefined;

  constructor(opts: SharingMoverOptions) {
    this.#o = opts;
  }

  running(): boolean {
    return this.#running;
  }

  /** The cross-process move lease (move-lease.ts), or `move_in_progress`. */
  async #lease(): Promise<() => void> {
    const release = await takeMoveLease(this.#o.store, this.#o.shared === true);
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
          await this.#sendPending(f.current, f.next, mine, url, i + 1);
          return true;
        } catch {
          return false;
        } finally {
          wipeShare(mine);
        }
      },
    };
  }

  /** Runs one move; resolves with the new (current) sharing. */
  async move(kind: MoveKind, target: MoveTarget): Promise<SharingInfo> {
    if (this.#running) throw new MoveError('move_in_progress');
    const { keys } = this.#o;
    const current = keys.sharing();
    if (!keys.isReady() || !current) throw new MoveError('move_not_ready');
    if (!validTarget(target)) throw new MoveError('move_bad_target');
    this.#running = true;
    try {
      const releaseLease = await this.#lease();
      try {
        return await this.#run(kind, current, target);
      } finally {
        releaseLease();
      }
    } finally {
      this.#running = false;
    }
  }

  async #run(kind: MoveKind, current: SharingInfo, target: MoveTarget): Promise<SharingInfo> {
    const { store, keys, logger, audit, onStep } = this.#o;
    const epoch = await nextEpoch(store, current.epoch);
    const split = splitSecret(keys.root(), target.threshold, target.shares);
    const next: SharingInfo = {
      epoch, threshold: target.threshold, shares: target.shares, commitments: split.commitments, peers: [...target.peers],
    };
    const log = logger.child({ move: kind, fromEpoch: current.epoch, toEpoch: epoch, threshold: next.threshold, shares: next.shares });
    const fields = { kind, from: current.epoch, to: epoch, threshold: next.threshold, shares: next.shares };
    try {
      log.info('sharing move: started');
      await storePending(store, { kind, sharing: next });
      log.info('sharing move: pending sharing stored');
      audit?.event('sharing.move_pending', fields);
      await onStep?.('after-pending-store');
      const unacked = await this.#pushPending(current, next, split.shares, log);
      if (unacked.length > 0) {
        await clearPending(store, epoch).catch((e: unknown) => log.error({ err: errInfo(e) }, 'sharing move: could not clear the pending record'));
        log.error({ unacked }, 'sharing move abandoned: not every Keeper acknowledged its pending share; the current sharing stays; rerun when the Keepers are up');
        audit?.event('sharing.move_abandoned', { ...fields, unacked: unacked.join(',') });
        throw new MoveError('move_keepers_unacked');
      }
      log.info('sharing move: every Keeper holds its pending share');
      this.#inflight = { current, next, shares: split.shares };
      await onStep?.('after-pending-push');
      await this.#confirmHeld(current, next, split.shares, log, fields);
      await this.#checkNotSuperseded(current, next, log, fields);
      await commitSharing(store, next);
      this.#inflight = undefined;
      log.info('sharing move: new sharing committed in the store');
      audit?.event('sharing.move_committed', fields);
      await onStep?.('after-commit');
      keys.replaceSharing(split.shares.slice(0, next.threshold), next);
      await this.#pushCommit(next, split.shares, log);
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
   * `promote` sends the commit message. `done` releases the lock and wipes the shares.
   */
  forRotation(): RootSharingMove {
    let held: { next: SharingInfo; shares: Share[] } | undefined;
    let releaseLease: (() => void) | undefined;
    const release = (): void => {
      this.#inflight = undefined;
      held?.shares.forEach(wipeShare);
      held = undefined;
      releaseLease?.();
      releaseLease = undefined;
      this.#running = false;
    };
    return {
      stage: async (root: RootKey): Promise<StagedSharing> => {
        if (this.#running) throw new MoveError('move_in_progress');
        const { store, keys, logger, audit, onStep } = this.#o;
        const current = keys.sharing();
        if (!keys.isReady() || !current?.peers) throw new MoveError('move_not_ready');
        this.#running = true;
        try {
          releaseLease = await this.#lease();
          const epoch = await nextEpoch(store, current.epoch);
          const split = splitSecret(root, current.threshold, current.shares);
          const next: SharingInfo = { ...current, epoch, commitments: split.commitments, peers: [...current.peers] };
          held = { next, shares: split.shares };
          const fields = { kind: 'rotate', from: current.epoch, to: epoch, threshold: next.threshold, shares: next.shares };
          const log = logger.child({ move: 'rotate', fromEpoch: current.epoch, toEpoch: epoch });
          await storePending(store, { kind: 'rotate', sharing: next });
          audit?.event('sharing.move_pending', fields);
          await onStep?.('after-pending-store');
          const unacked = await this.#pushPending(current, next, split.shares, log);
          if (unacked.length > 0) {
            await clearPending(store, epoch).catch((e: unknown) => log.error({ err: errInfo(e) }, 'sharing move: could not clear the pending record'));
            audit?.event('sharing.move_abandoned', { ...fields, unacked: unacked.join(',') });
            throw new MoveError('move_keepers_unacked');
          }
          this.#inflight = { current, next, shares: split.shares };
          await onStep?.('after-pending-push');
          await this.#confirmHeld(current, next, split.shares, log, fields);
          await this.#checkNotSuperseded(current, next, log, fields);
          return { sharing: next, basis: split.shares.slice(0, next.threshold).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) })) };
        } catch (e) {
          release();
          throw e;
        }
      },
      promote: async (): Promise<void> => {
        this.#inflight = undefined;
        if (held) await this.#pushCommit(held.next, held.shares, this.#o.logger.child({ move: 'rotate', toEpoch: held.next.epoch }));
      },
      done: release,
    };
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

  /**
   * Phase one, per Keeper of the new list, with retries. A Keeper of the current sharing is
   * (re)sent its OWN current share — the one at its position in the CURRENT list, never the
   * share of its new position, so no Keeper ever sees two shares of one sharing — and then
   * its pending share. A Keeper new to the sharing holds nothing worth keeping: it gets its
   * share of the new sharing directly (recovery matches it by epoch either way). Returns
   * unacked positions.
   */
  async #pushPending(current: SharingInfo, next: SharingInfo, shares: readonly Share[], log: Logger): Promise<number[]> {
    const results = await Promise.all(next.peers!.map(async (url, i) => {
      const pos = i + 1;
      const ok = await this.#withRetries(log, pos, () => this.#sendPending(current, next, shares[i]!, url, pos));
      return ok ? 0 : pos;
    }));
    return results.filter((p) => p !== 0);
  }

  /** One phase-one send to the Keeper at `pos` of the new list (see #pushPending). */
  async #sendPending(current: SharingInfo, next: SharingInfo, share: Share, url: string, pos: number): Promise<void> {
    const { client, keys } = this.#o;
    const curPos = (current.peers ?? next.peers!).indexOf(url) + 1;
    if (curPos === 0) {
      await client.contribute(url, { value: share.value, id: pos, epoch: next.epoch, commitments: next.commitments });
      return;
    }
    const old = keys.shareFor(curPos);
    try {
      await client.contribute(url, { value: old.value, id: curPos, epoch: current.epoch, commitments: current.commitments });
    } finally {
      wipeShare(old);
    }
    await client.contribute(url, { value: share.value, id: pos, epoch: next.epoch, commitments: next.commitments, pending: true });
  }

  /**
   * Right before the commit (or a rotation's store switch): every Keeper of the new list
   * still holds its share of `next`, pending or current. A Keeper that restarted empty after
   * acknowledging would otherwise be missing from the new sharing the store is about to
   * record (too many such restarts plus a Nexus crash would leave fewer than `t` shares).
   * Keepers that lost it are sent it again (with retries) and asked once more; missing or
   * silent Keepers then abandon the move like an unacknowledged push.
   */
  async #confirmHeld(current: SharingInfo, next: SharingInfo, shares: readonly Share[], log: Logger, fields: Record<string, string | number>): Promise<void> {
    const { store, audit } = this.#o;
    let missing = await this.#lacking(next);
    if (missing.length > 0) {
      log.warn({ missing }, 'sharing move: a Keeper no longer holds its new share (restarted?); sending it again before the commit');
      await Promise.all(missing.map((pos) => this.#withRetries(log, pos, () => this.#sendPending(current, next, shares[pos - 1]!, next.peers![pos - 1]!, pos))));
      missing = await this.#lacking(next);
    }
    if (missing.length === 0) return;
    await clearPending(store, next.epoch).catch((e: unknown) => log.error({ err: errInfo(e) }, 'sharing move: could not clear the pending record'));
    log.error({ missing }, 'sharing move abandoned: a Keeper no longer holds its new share (restarted?); the current sharing stays; rerun');
    audit?.event('sharing.move_abandoned', { ...fields, unacked: missing.join(',') });
    throw new MoveError('move_keepers_unacked');
  }

  /** Positions of the new list whose Keeper holds no share of `next` (or does not answer). */
  async #lacking(next: SharingInfo): Promise<number[]> {
    return (await Promise.all(next.peers!.map(async (url, i) => {
      try {
        const st = await this.#o.client.status(url, CONFIRM_TIMEOUT_MS);
        return st.pending === next.epoch || st.epoch === next.epoch ? 0 : i + 1;
      } catch {
        return i + 1;
      }
    }))).filter((p) => p !== 0);
  }

  /** Phase two: the commit message (best effort; the periodic re-push completes it). */
  async #pushCommit(next: SharingInfo, shares: readonly Share[], log: Logger): Promise<void> {
    const { client } = this.#o;
    await Promise.all(next.peers!.map(async (url, i) => {
      const pos = i + 1;
      const ok = await this.#withRetries(log, pos, () =>
        client.contribute(url, { value: shares[i]!.value, id: pos, epoch: next.epoch, commitments: next.commitments }));
      if (!ok) log.warn({ keeperId: pos }, 'sharing move: commit not acknowledged; the periodic re-push will complete it');
    }));
  }

  async #withRetries(log: Logger, pos: number, fn: () => Promise<void>): Promise<boolean> {
    const attempts = this.#o.attempts ?? 6;
    const backoff = new Backoff({ initialMs: this.#o.initialBackoffMs ?? 250, maxMs: this.#o.maxBackoffMs ?? 4000, jitter: 'equal' });
    for (let a = 1; a <= attempts; a++) {
      try {
        await fn();
        return true;
      } catch (e) {
        log.warn({ keeperId: pos, attempt: a, reason: errInfo(e) }, 'sharing move: keeper push failed');
        if (a < attempts) await new Promise((r) => setTimeout(r, Math.max(1, backoff.next())));
      }
    }
    return false;
  }
}
