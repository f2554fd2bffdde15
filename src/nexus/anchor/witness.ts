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
 * Left: with several processes writing, an older copy put back within a push and a probe
 * interval (~2.5 s) of another process's writes, and then written past that process's counter
 * by processes that had not heard of them, before it writes or looks again (5 s), is not told
 * from a store that moved on: the counters do not bind the history.
 */
import { MAX_ANCHOR_COUNTER } from '../../store/index.js';
import type { AnchorChain } from './sealer.js';
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
}

export class KeeperWitness {
  readonly #host: WitnessHost;
  readonly #keepers: KeeperAnchors;
  readonly #recheckMs: number;
  /** The Keeper counter being compared with the store, and a higher one to compare next. */
  #comparing: bigint | undefined;
  #next: bigint | undefined;
  #seen = 0n;
  #evidence: NodeJS.Timeout | undefined;
  #second: NodeJS.Timeout | undefined;

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
  }

  /** A verified Keeper anchor `theirs` (its status just answered): the store must hold as much. */
  async compare(theirs: bigint): Promise<void> {
    if (theirs > this.#seen) this.#seen = theirs;
    const chain = this.#host.servingChain();
    if (!chain || theirs <= chain.committed) return;
    if (this.#comparing !== undefined) {
      if (theirs > this.#comparing && (this.#next === undefined || theirs > this.#next)) this.#next = theirs;
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
    } finally {
      this.#comparing = undefined;
      const next = this.#next;
      this.#next = undefined;
      if (next !== undefined) void this.compare(next);
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
