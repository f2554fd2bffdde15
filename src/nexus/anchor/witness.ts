/**
 * The Keepers as the witness every Nexus process on one store shares (guard.ts). Each
 * process's chain (sealer.ts) knows only the anchor records it read or committed, so an older
 * copy put back between what one process saw and what another wrote passes the first one's own
 * checks. `look` is the chain's read-and-check of the stored record outside a write (every
 * RECHECK_MS, and on demand). Three things close the gap:
 *
 * - `compare`: a verified Keeper anchor above what this process read (a status answer of the
 *   Keeper probe, or of a push that found the Keeper ahead: pusher.ts) makes it read the
 *   store's record, the read issued AFTER the Keeper answered: a Keeper only gets a counter
 *   once the store committed it (or as evidence of a rollback), so a record below it means the
 *   store went back (`behind`). Only reads issued after the status are held to it (a slow
 *   answer to an earlier read is no evidence of anything).
 * - `holdEvidence`: a process that found a rollback hands every Keeper below it a counter far
 *   above anything written ({@link EVIDENCE_MARGIN}), once now, again after a second (a push
 *   that asked a Keeper just before may have landed over it) and then every `recheckMs` while
 *   refused, so every other process finds the store behind the Keepers at its next status,
 *   however many writes it made on the copy meanwhile, and a restart's check refuses too.
 * - `acceptedElsewhere`: a refused process whose store's record verifies above every counter
 *   it refused on was re-anchored by another process's accept (only an accept moves it there).
 *
 * - `bind`: a record seen in the store's history (one this process's chain moved past, a
 *   Keeper's anchor) must still be the record the history holds at its counter. An older copy
 *   put back and then written past that counter by processes that had not seen the newer state
 *   holds another record there (every record has its own nonce): `diverged`. The pusher binds a
 *   Keeper's record before putting a newer one over it, so such a process cannot erase it.
 *   A counter the history no longer holds (more than ANCHOR_HISTORY_KEEP behind, or below an
 *   accepted rollback) binds nothing.
 */
import { MAX_ANCHOR_COUNTER, anchorNonce } from '../../store/index.js';
import type { AnchorChain, BoundRecord } from './sealer.js';
import type { AnchorKey } from './mac.js';
import type { KeeperAnchors } from './keepers.js';

/**
 * Evidence and accepted rollbacks are this far above every counter known: 2^32 write batches,
 * over a century at one per millisecond. No process can write past evidence before it hears
 * of it, and an anchor from before an accept (a Keeper silent then, evidence handed over
 * late) never looks newer than the store afterwards.
 */
export const EVIDENCE_MARGIN = 2n ** 32n;
/** The second hand-over of evidence, after the first. */
const SECOND_RAISE_MS = 1000;
/** Records the chain moved past, kept for binding while the store does not answer (the oldest go first). */
const MAX_PENDING = 4096;
/** Keeper records already bound, remembered so a status repeating one costs no store read. */
const BOUND_MEMO = 32;

/** `counter` + {@link EVIDENCE_MARGIN}, within the counter's range. */
export function farAbove(counter: bigint): bigint {
  const c = counter + EVIDENCE_MARGIN;
  return c > MAX_ANCHOR_COUNTER ? MAX_ANCHOR_COUNTER : c;
}

export interface WitnessHost {
  /** The chain while serving; undefined otherwise. */
  servingChain(): AnchorChain | undefined;
  /** The store's anchor record. */
  read(): Promise<Uint8Array | null>;
  /** The counter `record` proves under this process's anchor keys, or undefined. */
  open(record: Uint8Array): bigint | undefined;
  /** The store's record is below a Keeper's anchor, read after the Keeper answered: a rollback. */
  behind(storeCounter: bigint, keeperCounter: bigint): void;
  /** The nonces of the records the store's history holds at these counters. */
  recorded(counters: readonly bigint[]): Promise<Map<bigint, Uint8Array>>;
  /** The store's history holds another record at `counter` than one seen there: a rollback. */
  diverged(counter: bigint): void;
}

export class KeeperWitness {
  readonly #host: WitnessHost;
  readonly #keepers: KeeperAnchors;
  readonly #recheckMs: number;
  /** The Keeper counter being compared with the store, and a higher one to compare next. */
  #comparing: bigint | undefined;
  #next: { counter: bigint; record?: Uint8Array } | undefined;
  #seen = 0n;
  #evidence: NodeJS.Timeout | undefined;
  #second: NodeJS.Timeout | undefined;
  /** Records the chain moved past that are still to be bound (their read failed). */
  #pending: BoundRecord[] = [];
  #bindSoon = false;
  /** Keeper records bound already (hex). */
  #boundMemo = new Set<string>();

  constructor(host: WitnessHost, keepers: KeeperAnchors, recheckMs: number) {
    this.#host = host;
    this.#keepers = keepers;
    this.#recheckMs = recheckMs;
  }

  /** The highest verified anchor a Keeper showed this process (0: none). */
  get keepersSeen(): bigint {
    return this.#seen;
  }

  /**
   * The store's record, read and checked by the chain while serving (the periodic look): a
   * write that read a newer record meanwhile makes this answer possibly older than what the
   * chain has seen, so it is then not checked (the write checked it).
   */
  async look(): Promise<void> {
    const chain = this.#host.servingChain();
    if (!chain) return;
    const seen = chain.committed;
    const stored = await this.#read();
    if (stored === false || this.#host.servingChain() !== chain || chain.committed !== seen) return;
    this.#checkQuietly(chain, stored);
    await this.bind();
  }

  /** The chain moved past records (sealer.ts `onUnbound`; maybe inside a store transaction): bind them soon. */
  chainMoved(): void {
    if (this.#bindSoon) return;
    this.#bindSoon = true;
    setImmediate(() => {
      this.#bindSoon = false;
      void this.bind();
    }).unref();
  }

  /**
   * Binds `seen` (a Keeper's records) and the records the chain moved past with the store's
   * history: true when the history holds each (or no longer holds its counter); false, after
   * `diverged`, when it holds another record at one's counter; undefined when the store did not
   * answer (or this process stopped serving): not decided.
   */
  async bind(seen: readonly BoundRecord[] = []): Promise<boolean | undefined> {
    const chain = this.#host.servingChain();
    if (!chain) return undefined;
    const mine = [...this.#pending, ...chain.takeUnbound()];
    this.#pending = [];
    const theirs = seen.filter((r) => !this.#boundMemo.has(Buffer.from(r.record).toString('hex')));
    const all = [...mine, ...theirs];
    if (all.length === 0) return true;
    let held: Map<bigint, Uint8Array>;
    try {
      held = await this.#host.recorded([...new Set(all.map((r) => r.counter))]);
    } catch {
      // The store does not answer (its own health reporting says so): bound at the next look.
      if (this.#host.servingChain() === chain) this.#pending = [...mine, ...this.#pending].slice(-MAX_PENDING);
      return undefined;
    }
    if (this.#host.servingChain() !== chain) return undefined;
    const other = all.find((r) => otherHistory(held.get(r.counter), r.record));
    if (other !== undefined) {
      this.#host.diverged(other.counter);
      return false;
    }
    for (const r of theirs) {
      if (this.#boundMemo.size >= BOUND_MEMO) this.#boundMemo.clear();
      this.#boundMemo.add(Buffer.from(r.record).toString('hex'));
    }
    return true;
  }

  /**
   * A new chain: forgets what was to be bound (accepted, checked again), unless the store's
   * history is the same one (`keepPending`: re-keyed), whose records are still bound later.
   */
  forget(keepPending = false): void {
    if (!keepPending) this.#pending = [];
    this.#boundMemo.clear();
  }

  /**
   * A verified Keeper anchor `theirs` (its status just answered): the store must hold as much,
   * and, once it does, hold `record` at that counter.
   */
  async compare(theirs: bigint, record?: Uint8Array): Promise<void> {
    if (theirs > this.#seen) this.#seen = theirs;
    const chain = this.#host.servingChain();
    if (!chain) return;
    if (theirs <= chain.committed) {
      if (record !== undefined) await this.bind([{ counter: theirs, record }]);
      return;
    }
    if (this.#comparing !== undefined) {
      if (theirs > this.#comparing && (this.#next === undefined || theirs > this.#next.counter)) this.#next = { counter: theirs, ...(record ? { record } : {}) };
      return;
    }
    this.#comparing = theirs;
    try {
      const seen = chain.committed;
      const stored = await this.#read(); // issued after the Keeper answered
      if (stored === false || this.#host.servingChain() !== chain) return;
      const counter = stored === null ? 0n : this.#host.open(stored);
      if (counter === undefined) {
        // Another root's record, or a planted one: the chain's own rules say which.
        if (chain.committed === seen) this.#checkQuietly(chain, stored);
        return;
      }
      if (counter < theirs) return this.#host.behind(counter, theirs);
      // As much as the Keeper: the chain learns the record (unless a write moved it meanwhile).
      if (chain.committed === seen) this.#checkQuietly(chain, stored);
      if (record !== undefined) await this.bind([{ counter: theirs, record }]);
    } finally {
      this.#comparing = undefined;
      const next = this.#next;
      this.#next = undefined;
      if (next !== undefined) void this.compare(next.counter, next.record);
    }
  }

  /**
   * Refused on counters up to `refusedAt`: true when the store's record now verifies above it,
   * which only another process's accept does (re-anchored far above every anchor known).
   */
  async acceptedElsewhere(refusedAt: bigint): Promise<boolean> {
    const stored = await this.#read();
    if (!stored) return false;
    const counter = this.#host.open(stored);
    return counter !== undefined && counter > refusedAt;
  }

  /** Hands the Keepers `counter` once `after` settled, after a second, then every recheckMs until `stopped`. */
  holdEvidence(key: AnchorKey, counter: bigint, o: { after?: Promise<void> | undefined; stopped: () => boolean }): void {
    this.release();
    const raise = (): void => {
      if (!o.stopped()) void this.#keepers.raise(key, counter, { stopped: o.stopped });
    };
    void this.#keepers.raise(key, counter, o);
    const second = setTimeout(raise, SECOND_RAISE_MS);
    second.unref();
    const timer = setInterval(() => {
      if (o.stopped()) this.release();
      else raise();
    }, this.#recheckMs);
    timer.unref();
    this.#evidence = timer;
    this.#second = second;
  }

  /** Stops handing over evidence (accepted, or stopping). */
  release(): void {
    clearInterval(this.#evidence);
    clearTimeout(this.#second);
    this.#evidence = undefined;
    this.#second = undefined;
  }

  /** The store's record; false when the store does not answer (its own health reporting says so). */
  async #read(): Promise<Uint8Array | null | false> {
    try {
      return await this.#host.read();
    } catch {
      return false;
    }
  }

  #checkQuietly(chain: AnchorChain, stored: Uint8Array | null): void {
    try {
      chain.check(stored);
    } catch {
      // refused: the chain's onRollback has run (the alarm, or the stale check)
    }
  }
}

/** The history holds `nonce` at a record's counter, and it is not that record's (a version-1 record has none: binds nothing). */
export function otherHistory(nonce: Uint8Array | undefined, record: Uint8Array): boolean {
  const own = anchorNonce(record);
  return nonce !== undefined && own !== undefined && !own.equals(nonce);
}
