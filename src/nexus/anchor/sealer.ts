/**
 * The rollback anchor's next record, as the store asks for it (the store's `AnchorSealer`):
 * the stored record's MAC-VERIFIED counter plus one (at least `min`), sealed under the anchor
 * key. While Nexus serves, the stored record can only move forward; anything else is a
 * rollback of the store under a running Nexus and is refused, never covered up:
 *
 * - a record that does not verify (planted, damaged, or from a backup taken under another
 *   root key), or a record that vanished after one was seen (a restored pre-anchor backup):
 *   `onRollback` (the guard refuses to serve, 503 `state_rollback_detected`, until
 *   `spike operator accept-rollback`) and the write is refused as retryable (`store_busy`);
 *   a planted huge counter is therefore never laundered into a sealed one, and never makes
 *   the next counter overflow (ATTACK planted anchor counter);
 * - a verified counter BELOW the highest one this process read from the store (`committed`:
 *   an older copy put back, a PostgreSQL fail-over to a lagging standby): the same.
 * (A store behind a Keeper's anchor is the witness's to find: witness.ts.)
 *
 * `committed` moves with values read back from the store (committed by definition) and with a
 * value this chain sealed once the store says its transaction committed, never before (it may
 * still roll back).
 *
 * The history: every record is unique (its nonce), and the chain keeps the one it knows at
 * `committed`. A verified record at that very counter with other bytes is another history
 * (`diverged`: an older copy put back and written on again by a process that had not seen this
 * one's record). When the chain moves past its known record to a record another process wrote,
 * the known one is queued (`takeUnbound`): the witness then asks the store's history whether it
 * still holds that record at its counter (witness.ts), which the counters alone cannot tell.
 *
 * `adopt`: the one record the start-up check or the operator accepted as the base although it
 * does not verify (or null: none stored); counting continues above the counter it claims; `previous`: after a root-key rotation, records
 * sealed under the old key still verify (writes under the old key may land during the re-key,
 * and other instances keep the old key until they restart).
 */
import type { Logger } from '../../lib/index.js';
import { MAX_ANCHOR_COUNTER, StoreError, anchorCounter, sameAnchorRecord, type AnchorSealer } from '../../store/index.js';
import type { AnchorKey } from './mac.js';

/** Why the chain refused: the stored record does not verify, vanished, went back, or is of another history. */
export type RuntimeRollback = 'unverified' | 'vanished' | 'behind' | 'diverged';

/** A record the chain knew at `counter`, which the store's history must still hold there. */
export interface BoundRecord {
  counter: bigint;
  record: Uint8Array;
}

/** Records queued for the witness at most (a store that cannot answer for long loses the oldest). */
const MAX_UNBOUND = 4096;
/** An adopted record's counter is continued only this far below the top (2^40 batches: decades). */
const ADOPT_ROOM = 2n ** 40n;

export interface AnchorChainOptions {
  key: AnchorKey;
  /** The previous root's anchor key, after a rotation (owned by the caller). */
  previous?: AnchorKey;
  logger: Logger;
  /** The highest counter read back from the store so far (the start-up check's verified value). */
  committed: bigint;
  /** Accepted as the base once, although it does not verify (undefined: nothing adopted). */
  adopt?: Uint8Array | null;
  /** The record read at `committed` (the start-up check's), when it verified. */
  known?: Uint8Array;
  /** Records were queued for the witness (`takeUnbound`); must not throw. */
  onUnbound?: () => void;
  /** A rollback under a running Nexus (called before the write is refused). */
  onRollback?: (cause: RuntimeRollback, storeCounter: bigint | undefined) => void;
}

export class AnchorChain {
  readonly #o: AnchorChainOptions;
  #committed: bigint;
  #floor: bigint;
  #adopt: Uint8Array | null | undefined;
  /** The record at `committed`, as read or committed (undefined: not known). */
  #known: Uint8Array | undefined;
  /** The record this chain sealed last (a batch may read it before its commit is told). */
  #lastSealed: Uint8Array | undefined;
  #unbound: BoundRecord[] = [];

  constructor(o: AnchorChainOptions) {
    this.#o = o;
    this.#committed = o.committed;
    this.#floor = o.committed;
    this.#adopt = o.adopt === undefined || o.adopt === null ? o.adopt : Uint8Array.from(o.adopt);
    this.#known = o.known === undefined ? undefined : Uint8Array.from(o.known);
  }

  /** The records this chain moved past since the last call, for the witness to bind (oldest first). */
  takeUnbound(): BoundRecord[] {
    const out = this.#unbound;
    this.#unbound = [];
    return out;
  }

  /** The highest counter this chain read back from the store. */
  get committed(): bigint {
    return this.#committed;
  }

  /** The record at `committed`, as read or committed (undefined: not known). */
  get known(): Uint8Array | undefined {
    return this.#known;
  }

  /** The highest counter this chain read or sealed (sealed ones may not have committed). */
  get floor(): bigint {
    return this.#floor;
  }

  /**
   * The stored record read back outside a write (the guard's periodic look): the same rules
   * as a seal, so a store put back, emptied or planted under a Nexus that only reads is
   * refused too. Throws (after `onRollback`) like a seal would.
   */
  check(stored: Uint8Array | null): void {
    this.#base(stored);
  }

  /**
   * A record this chain sealed whose transaction committed (the store says so): it is in the
   * store as surely as one read back, so a copy put back even one write behind is `behind`.
   */
  readonly noteCommitted = (record: Uint8Array): void => {
    const verified = this.#o.key.open(record);
    if (verified === undefined || verified <= this.#committed) return;
    // Sealed on the stored record, which `#base` checked: this chain's own continuation.
    this.#committed = verified;
    this.#known = Uint8Array.from(record);
  };

  /** What this chain knows now (the store's `mark`: a read issued now is held to this). */
  readonly mark = (): bigint => this.#committed;

  readonly seal: AnchorSealer = (stored, min, issuedAt) => {
    let next = this.#base(stored, issuedAt) + 1n;
    if (next < min) next = min;
    if (next > MAX_ANCHOR_COUNTER) next = MAX_ANCHOR_COUNTER; // 2^53 batches: never reached in practice
    if (next > this.#floor) this.#floor = next;
    const record = this.#o.key.seal(next);
    this.#lastSealed = record;
    return record;
  };

  /** The counter the stored record proves; throws (after `onRollback`) when it proves a rollback. */
  #base(stored: Uint8Array | null, issuedAt?: bigint): bigint {
    if (this.#adopt !== undefined) {
      if (sameAnchorRecord(stored, this.#adopt)) return this.#adoptedBase();
      // Not verified yet since the adoption, and another record this key cannot open, further
      // on: a process still on the old root wrote it (a crash between a root switch and its
      // re-key). It is the base now, as the adopted one was; an older one is refused below.
      const claimed = anchorCounter(stored);
      if (stored !== null && claimed !== undefined && claimed > (anchorCounter(this.#adopt) ?? 0n)
        && this.#o.key.open(stored) === undefined && this.#o.previous?.open(stored) === undefined) {
        this.#adopt = Uint8Array.from(stored);
        return this.#adoptedBase();
      }
    }
    const verified = stored === null ? undefined : (this.#o.key.open(stored) ?? this.#o.previous?.open(stored));
    if (verified !== undefined && stored !== null) {
      if (verified < this.#committed) {
        // Read before this chain learnt the newer record, answered after: no evidence of
        // anything. Nothing is learnt from it; the swap sealed on it finds the store moved on.
        if (issuedAt !== undefined && verified >= issuedAt) return verified;
        this.#refuse('behind', verified);
      }
      const known = this.#known;
      if (verified === this.#committed) {
        if (known !== undefined && !sameAnchorRecord(stored, known)) this.#refuse('diverged', verified);
      } else if (known !== undefined && !(this.#lastSealed !== undefined && sameAnchorRecord(stored, this.#lastSealed))) {
        // Another process's record: the one known here must still be in its history. (This
        // chain's own last record, read before its commit was told, was sealed on a base
        // checked then: nothing to bind.)
        this.#unbind({ counter: this.#committed, record: known });
      }
      if (known === undefined || verified !== this.#committed) this.#known = Uint8Array.from(stored);
      this.#adopt = undefined;
      this.#committed = verified;
      if (verified > this.#floor) this.#floor = verified;
      return verified;
    }
    // No record, and none was ever read back: a store that never had one (a sealed first
    // record whose transaction rolled back leaves it so too).
    if (stored === null && this.#committed === 0n) return 0n;
    this.#refuse(stored === null ? 'vanished' : 'unverified', undefined);
  }

  /**
   * The base an adopted record gives: the counter it claims (unverified, so only where it leaves
   * room: {@link ADOPT_ROOM} below the top), else what was read back. Counting goes on above the
   * old key's records, so no counter is used twice (their history, the evidence of other
   * processes that read them, stays true).
   */
  #adoptedBase(): bigint {
    const claimed = anchorCounter(this.#adopt) ?? 0n;
    return claimed <= MAX_ANCHOR_COUNTER - ADOPT_ROOM && claimed > this.#committed ? claimed : this.#committed;
  }

  #unbind(r: BoundRecord): void {
    if (this.#unbound.length >= MAX_UNBOUND) this.#unbound.shift();
    this.#unbound.push(r);
    this.#o.onUnbound?.();
  }

  #refuse(cause: RuntimeRollback, storeCounter: bigint | undefined): never {
    this.#o.onRollback?.(cause, storeCounter);
    throw new StoreError('store_busy');
  }
}
