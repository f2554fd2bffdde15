/**
 * The Keeper's one share slot, in memory only (never written anywhere).
 *
 * Holds `(epoch, id, value)` and, when the sender supplied them, the public Feldman
 * commitments of that sharing (docs/design/share-lifecycle.md, § 2). Rules for an incoming
 * share:
 *  - the value must be a valid share value (32 bytes, non-zero, < n) — checked by the
 *    caller's decoder; with commitments and an id it must verify against them (D6);
 *  - the epoch must be in range (1 … MAX_SHARE_EPOCH), and Bootstrap may only send the
 *    first sharing's epoch (BOOTSTRAP_EPOCH): it creates that sharing and nothing else;
 *    a later epoch could come only from Nexus (no code creates one today). Out of range
 *    → `keeper_epoch_out_of_range` (400), nothing changes;
 *  - Nexus always wins over what Bootstrap put in the slot, whatever its epoch: a Keeper
 *    restarted empty holds only what the first sender gave it, so an epoch set by Bootstrap
 *    is never authoritative (issue 11: a poisoned epoch must not lock Nexus out);
 *  - only an epoch Nexus itself confirmed counts: an older epoch from Nexus than a
 *    Nexus-confirmed one is refused (`keeper_stale_epoch`, 409), e.g. from a lagging Nexus
 *    if epochs ever move;
 *  - once a Nexus has confirmed the current sharing (it pushes shares only after it has
 *    rebuilt and checked the key), Bootstrap may re-send the identical share (ack, no
 *    change) but any other share is refused (`keeper_share_conflict`, 409;
 *    KPR-08, CFG-05). Before confirmation Bootstrap may replace the share, so an
 *    interrupted bootstrap can be rerun.
 *
 * Atomic seeding (CFG-03): Bootstrap first sends its share with `staged: true`. A staged
 * share is held apart and never served (`/v1/store/shard` answers as if empty), so Nexus
 * cannot rebuild a key from a run that did not reach every Keeper. Only once every Keeper
 * acknowledged its staged share does Bootstrap re-send the identical share without the flag:
 * the commit, which makes it the held share. Rules:
 *  - only Bootstrap stages (Nexus → `keeper_stage_refused`, 400);
 *  - a confirmed held share: the identical share staged is acknowledged (no change), any
 *    other is refused (409), as for an unstaged share;
 *  - otherwise a different staged share replaces the staged one AND withdraws an unconfirmed
 *    held share (a new Bootstrap run starts over: a half-committed earlier run stops being
 *    served);
 *  - any share from Nexus drops the staged one (Nexus always wins);
 *  - an unstaged Bootstrap share that is not the staged one is refused (409) while one is
 *    staged (two runs at once must not mix their sharings); with nothing staged (a SPIKE
 *    sender that knows no staging) the rules above apply;
 *  - nothing is staged while Nexus holds a pending share here (a sharing move): 409;
 *  - a staged share not committed within {@link STAGED_TTL_MS} (5 minutes) is zeroed and
 *    dropped: a failed run (a Keeper unreachable at the stage) leaves nothing in the other
 *    Keepers' memory past that. Bootstrap's stage-to-commit window is bounded by its per-Keeper
 *    delivery deadline (SPIKE_BOOTSTRAP_KEEPER_TIMEOUT, 30 s by default: stage ≤ 30 s, then
 *    commit), so 5 minutes leaves ten times the default and room for a raised deadline. A
 *    commit arriving after the expiry finds nothing staged and is taken as an unstaged
 *    Bootstrap share (the rules above): every Keeper had acknowledged its stage by then, so
 *    atomicity is not lost.
 *
 * Sharing moves (share refresh, Keeper set change): besides the current share the slot may
 * hold ONE pending share of a higher epoch, sent by Nexus with `pending: true`:
 *  - only Nexus sends pending shares (Bootstrap → `keeper_pending_refused`, 400), always
 *    with a share id and the new sharing's Feldman commitments, which it must verify against
 *    (none → `keeper_pending_unverifiable`, 400: a pending share is taken only verified, as
 *    it may become the Keeper's current share at the commit), only while a current share is held (else `keeper_no_current`, 409: Nexus re-sends the
 *    current share first) and only above the current epoch (`keeper_stale_epoch`, 409);
 *    a new pending share replaces an older pending one (an abandoned move rerun);
 *  - a non-pending share from Nexus of the pending epoch with the identical value is the
 *    move's commit: it becomes current and every older epoch is dropped; a non-pending
 *    share from Nexus of any epoch above the current one replaces both (as before);
 *  - a non-pending share of the current epoch (the periodic re-push) leaves the pending
 *    share alone, so a re-push never undoes a move in flight.
 *
 * The held value is a secret: copied in, zeroed when replaced or cleared, handed out
 * only as a copy that the caller wipes.
 */
import { timingSafeEqual } from 'node:crypto';
import { Commitments } from '../crypto/index.js';
import { SpikeError } from '../lib/index.js';
import { MAX_SHARE_EPOCH } from '../protocol/index.js';

type Contributor = 'nexus' | 'bootstrap';

/** The epoch of the first sharing, the only one Bootstrap creates. */
export const BOOTSTRAP_EPOCH = 1;

/** How long a staged Bootstrap share waits for its commit before it is zeroed (see the module doc). */
export const STAGED_TTL_MS = 5 * 60_000;

export interface ShareSlotOptions {
  /** Default {@link STAGED_TTL_MS}. */
  stagedTtlMs?: number;
  /** Monotonic milliseconds clock (tests inject one); default `performance.now`. */
  now?: () => number;
  /** Runs `fn` after `ms` even if nothing touches the slot; default an unref'd setTimeout. */
  schedule?: (fn: () => void, ms: number) => { cancel(): void };
  /** A staged share expired and was zeroed (for a log line); must not throw. */
  onStagedExpired?: () => void;
}

function scheduleTimer(fn: () => void, ms: number): { cancel(): void } {
  const t = setTimeout(fn, ms);
  t.unref();
  return { cancel: () => clearTimeout(t) };
}

type KeeperSlotErrorCode = 'keeper_stale_epoch' | 'keeper_share_conflict' | 'keeper_share_unverified' | 'keeper_epoch_out_of_range'
  | 'keeper_pending_refused' | 'keeper_no_current' | 'keeper_pending_unverifiable' | 'keeper_stage_refused';

const MESSAGES: Record<KeeperSlotErrorCode, string> = {
  keeper_share_unverified: 'share does not verify against the supplied commitments',
  keeper_stale_epoch: 'share is from an older epoch than the one held',
  keeper_share_conflict: 'a different share for this epoch is already confirmed',
  keeper_epoch_out_of_range: 'share epoch is out of the range this sender may use',
  keeper_pending_refused: 'only Nexus may send a pending share',
  keeper_no_current: 'a pending share needs a current share held first',
  keeper_pending_unverifiable: 'a pending share needs its share id and the Feldman commitments of its sharing',
  keeper_stage_refused: 'only Bootstrap may stage a share',
};

export class KeeperSlotError extends SpikeError {
  readonly status: number;
  constructor(code: KeeperSlotErrorCode, status: number) {
    super(code, MESSAGES[code]);
    this.status = status;
  }
}

interface IncomingShare {
  value: Uint8Array;
  /** Share id (1-based Keeper position); SPIKE senders omit it. */
  id?: number;
  /** Sharing epoch; SPIKE senders omit it (treated as epoch 1). */
  epoch?: number;
  commitments?: Commitments;
  /** A sharing move's new share, held beside the current one until the commit. */
  pending?: boolean;
  /** Bootstrap's first phase: held apart, never served, until the identical share comes unstaged. */
  staged?: boolean;
}

interface HeldShare {
  value: Uint8Array;
  id: number | undefined;
  epoch: number;
  commitments: Commitments | undefined;
}

type ContributeOutcome = 'stored' | 'unchanged' | 'promoted' | 'staged' | 'committed';

function sameValue(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function copyOf(h: HeldShare): HeldShare {
  return { value: Uint8Array.from(h.value), id: h.id, epoch: h.epoch, commitments: h.commitments };
}

/** The largest epoch `from` may send. */
function maxEpochFrom(from: Contributor): number {
  return from === 'bootstrap' ? BOOTSTRAP_EPOCH : MAX_SHARE_EPOCH;
}

export class ShareSlot {
  #held: HeldShare | undefined;
  #pending: HeldShare | undefined;
  /** Bootstrap's staged share (CFG-03): never served; becomes #held at the commit. */
  #staged: HeldShare | undefined;
  /** When #staged was taken, and the timer that zeroes it at expiry. */
  #stagedAt = 0;
  #stagedTimer: { cancel(): void } | undefined;
  /** True once Nexus sent (or re-sent) the held share: only then is its epoch authoritative. */
  #confirmed = false;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #schedule: (fn: () => void, ms: number) => { cancel(): void };
  readonly #onExpired: (() => void) | undefined;

  constructor(o: ShareSlotOptions = {}) {
    this.#ttlMs = o.stagedTtlMs ?? STAGED_TTL_MS;
    // Monotonic: a wall-clock step must neither stretch nor cut a staged share's lifetime.
    this.#now = o.now ?? (() => performance.now());
    this.#schedule = o.schedule ?? scheduleTimer;
    this.#onExpired = o.onStagedExpired;
  }

  /** Whether a staged (never served) Bootstrap share is held. */
  hasStaged(): boolean {
    this.#expireStaged();
    return this.#staged !== undefined;
  }

  has(): boolean {
    return this.#held !== undefined;
  }

  /** Whether Nexus sent (or re-sent) the held share (false: Bootstrap's, or nothing held). */
  isConfirmed(): boolean {
    return this.#held !== undefined && this.#confirmed;
  }

  /** A copy of the held share (value copied: the caller wipes it), or undefined. */
  get(): HeldShare | undefined {
    const h = this.#held;
    if (!h) return undefined;
    return copyOf(h);
  }

  /** A copy of the pending share of a sharing move (the caller wipes it), or undefined. */
  getPending(): HeldShare | undefined {
    return this.#pending ? copyOf(this.#pending) : undefined;
  }

  contribute(from: Contributor, s: IncomingShare): ContributeOutcome {
    const epoch = s.epoch ?? BOOTSTRAP_EPOCH;
    if (!Number.isSafeInteger(epoch) || epoch < 1 || epoch > maxEpochFrom(from)) {
      throw new KeeperSlotError('keeper_epoch_out_of_range', 400);
    }
    if (s.commitments && s.id !== undefined && !s.commitments.verifyShare({ id: s.id, value: s.value })) {
      throw new KeeperSlotError('keeper_share_unverified', 400);
    }
    this.#expireStaged();
    if (s.pending === true) return this.#contributePending(from, epoch, s);
    if (s.staged === true) return this.#stage(from, epoch, s);
    if (from === 'nexus') this.#dropStaged();
    else {
      const st = this.#staged;
      if (st && epoch === st.epoch && sameValue(st.value, s.value)) return this.#commitStaged(st, s);
      // Another run's share while this one is staged: two Bootstrap runs at once must not
      // leave the Keepers holding shares of two sharings.
      if (st) throw new KeeperSlotError('keeper_share_conflict', 409);
    }
    const held = this.#held;
    const pend = this.#pending;
    if (from === 'nexus' && pend && epoch >= pend.epoch) {
      // The move's commit (same epoch, same value) or a newer sharing: the pending share goes.
      const promote = epoch === pend.epoch && sameValue(pend.value, s.value);
      this.#dropPending();
      held?.value.fill(0);
      this.#held = { value: Uint8Array.from(s.value), id: s.id ?? pend.id, epoch, commitments: s.commitments ?? pend.commitments };
      this.#confirmed = true;
      return promote ? 'promoted' : 'stored';
    }
    if (held) {
      const same = epoch === held.epoch && sameValue(held.value, s.value);
      if (same) {
        if (from === 'nexus') this.#confirmed = true;
        // Learn the id/commitments if the first sender did not supply them.
        if (held.id === undefined && s.id !== undefined) held.id = s.id;
        if (held.commitments === undefined && s.commitments !== undefined) held.commitments = s.commitments;
        return 'unchanged';
      }
      if (this.#confirmed) {
        // Once Nexus confirmed a sharing, only Nexus moves it (any epoch), never backwards.
        if (from === 'bootstrap') throw new KeeperSlotError('keeper_share_conflict', 409);
        if (epoch < held.epoch) throw new KeeperSlotError('keeper_stale_epoch', 409);
      }
      // Unconfirmed: the slot holds what Bootstrap sent. Nexus replaces it at any epoch;
      // Bootstrap may replace it (an interrupted bootstrap rerun).
      held.value.fill(0);
    }
    this.#held = { value: Uint8Array.from(s.value), id: s.id, epoch, commitments: s.commitments };
    this.#confirmed = from === 'nexus';
    return 'stored';
  }

  #contributePending(from: Contributor, epoch: number, s: IncomingShare): ContributeOutcome {
    if (from !== 'nexus') throw new KeeperSlotError('keeper_pending_refused', 400);
    // Verified in contribute() when both are present; a pending share is never taken unverified.
    if (!s.commitments || s.id === undefined) throw new KeeperSlotError('keeper_pending_unverifiable', 400);
    const held = this.#held;
    if (!held) throw new KeeperSlotError('keeper_no_current', 409);
    if (epoch <= held.epoch) throw new KeeperSlotError('keeper_stale_epoch', 409);
    const pend = this.#pending;
    if (pend && pend.epoch === epoch && sameValue(pend.value, s.value)) return 'unchanged';
    this.#dropPending();
    this.#pending = { value: Uint8Array.from(s.value), id: s.id, epoch, commitments: s.commitments };
    return 'stored';
  }

  #stage(from: Contributor, epoch: number, s: IncomingShare): ContributeOutcome {
    if (from !== 'bootstrap') throw new KeeperSlotError('keeper_stage_refused', 400);
    const held = this.#held;
    if (held && epoch === held.epoch && sameValue(held.value, s.value)) return 'unchanged';
    if (held && this.#confirmed) throw new KeeperSlotError('keeper_share_conflict', 409);
    const st = this.#staged;
    if (st && epoch === st.epoch && sameValue(st.value, s.value)) return 'unchanged';
    if (this.#pending) throw new KeeperSlotError('keeper_share_conflict', 409); // Nexus is moving the sharing
    // A new run: its staged share replaces an older one, and an unconfirmed share of an
    // earlier run (Bootstrap's own) is no longer served.
    this.#dropStaged();
    if (held) {
      held.value.fill(0);
      this.#held = undefined;
    }
    this.#staged = { value: Uint8Array.from(s.value), id: s.id, epoch, commitments: s.commitments };
    this.#stagedAt = this.#now();
    this.#armExpiry(this.#ttlMs);
    return 'staged';
  }

  /** The commit: the staged share becomes the held (unconfirmed) one. */
  #commitStaged(st: HeldShare, s: IncomingShare): ContributeOutcome {
    this.#stagedTimer?.cancel();
    this.#stagedTimer = undefined;
    this.#staged = undefined;
    this.#held?.value.fill(0);
    this.#held = { value: st.value, id: st.id ?? s.id, epoch: st.epoch, commitments: st.commitments ?? s.commitments };
    this.#confirmed = false;
    return 'committed';
  }

  #dropStaged(): void {
    this.#stagedTimer?.cancel();
    this.#stagedTimer = undefined;
    this.#staged?.value.fill(0);
    this.#staged = undefined;
  }

  /** The timer runs the expiry check; a clock that says "not yet" (timer granularity) re-arms it for the rest. */
  #armExpiry(ms: number): void {
    this.#stagedTimer = this.#schedule(() => {
      this.#stagedTimer = undefined;
      this.#expireStaged();
      if (this.#staged !== undefined && this.#stagedTimer === undefined) this.#armExpiry(Math.max(1, this.#stagedAt + this.#ttlMs - this.#now()));
    }, ms);
  }

  /** Zeroes a staged share older than the TTL (at its timer, and before every use of the slot). */
  #expireStaged(): void {
    if (this.#staged === undefined || this.#now() - this.#stagedAt < this.#ttlMs) return;
    this.#dropStaged();
    this.#onExpired?.();
  }

  #dropPending(): void {
    this.#pending?.value.fill(0);
    this.#pending = undefined;
  }

  clear(): void {
    this.#dropPending();
    this.#dropStaged();
    this.#held?.value.fill(0);
    this.#held = undefined;
    this.#confirmed = false;
  }
}
