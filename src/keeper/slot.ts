/**
 * The Keeper's one share slot, in memory only (never written anywhere).
 *
 * Holds `(epoch, id, value)` and, when the sender supplied them, the public Feldman
 * commitments of that sharing (share-lifecycle.md). Rules for an incoming share:
 *  - the value must be a valid share value (32 bytes, non-zero, < n) — checked by the
 *    caller's decoder; with commitments and an id it must verify against them (D6);
 *  - an older epoch than the one held is refused (`keeper_stale_epoch`, 409);
 *  - once a Nexus has confirmed the current sharing (it pushes shares only after it has
 *    rebuilt and checked the key), Bootstrap may re-send the identical share (ack, no
 *    change) but any other share for that epoch is refused (`keeper_share_conflict`,
 *    409; catalogue KPR-08, CFG-05). Before confirmation Bootstrap may replace the share,
 *    so an interrupted bootstrap can be rerun;
 *  - Nexus is the authority after recovery: its share replaces the slot.
 *
 * The held value is a secret: copied in, zeroed when replaced or cleared, handed out
 * only as a copy that the caller wipes.
 */
import { timingSafeEqual } from 'node:crypto';
import { Commitments } from '../crypto/index.js';
import { SpikeError } from '../errors.js';

export type Contributor = 'nexus' | 'bootstrap';

export class KeeperSlotError extends SpikeError {
  readonly status: number;
  constructor(code: 'keeper_stale_epoch' | 'keeper_share_conflict' | 'keeper_share_unverified', status: number) {
    super(code, code === 'keeper_share_unverified'
      ? 'share does not verify against the supplied commitments'
      : code === 'keeper_stale_epoch' ? 'share is from an older epoch than the one held'
      : 'a different share for this epoch is already confirmed');
    this.status = status;
  }
}

export interface IncomingShare {
  value: Uint8Array;
  /** Share id (1-based Keeper position); SPIKE senders omit it. */
  id?: number;
  /** Sharing epoch; SPIKE senders omit it (treated as epoch 1). */
  epoch?: number;
  commitments?: Commitments;
}

export interface HeldShare {
  value: Uint8Array;
  id: number | undefined;
  epoch: number;
  commitments: Commitments | undefined;
}

export type ContributeOutcome = 'stored' | 'unchanged';

export class ShareSlot {
  #held: HeldShare | undefined;
  #confirmed = false;

  has(): boolean {
    return this.#held !== undefined;
  }

  /** A copy of the held share (value copied: the caller wipes it), or undefined. */
  get(): HeldShare | undefined {
    const h = this.#held;
    if (!h) return undefined;
    return { value: Uint8Array.from(h.value), id: h.id, epoch: h.epoch, commitments: h.commitments };
  }

  contribute(from: Contributor, s: IncomingShare): ContributeOutcome {
    const epoch = s.epoch ?? 1;
    if (s.commitments && s.id !== undefined && !s.commitments.verifyShare({ id: s.id, value: s.value })) {
      throw new KeeperSlotError('keeper_share_unverified', 400);
    }
    const held = this.#held;
    if (held) {
      if (epoch < held.epoch) throw new KeeperSlotError('keeper_stale_epoch', 409);
      const same = epoch === held.epoch && held.value.length === s.value.length && timingSafeEqual(held.value, s.value);
      if (same) {
        if (from === 'nexus') this.#confirmed = true;
        // Learn the id/commitments if the first sender did not supply them.
        if (held.id === undefined && s.id !== undefined) held.id = s.id;
        if (held.commitments === undefined && s.commitments !== undefined) held.commitments = s.commitments;
        return 'unchanged';
      }
      // Once Nexus confirmed a sharing, only Nexus moves it (any epoch): a Bootstrap
      // identity must not be able to replace confirmed shares with a higher epoch.
      if (from === 'bootstrap' && this.#confirmed) {
        throw new KeeperSlotError('keeper_share_conflict', 409);
      }
      held.value.fill(0);
    }
    this.#held = { value: Uint8Array.from(s.value), id: s.id, epoch, commitments: s.commitments };
    this.#confirmed = from === 'nexus';
    return 'stored';
  }

  clear(): void {
    this.#held?.value.fill(0);
    this.#held = undefined;
    this.#confirmed = false;
  }
}
