/**
 * The Keepers as the witness every Nexus process on one store shares (guard.ts). Each
 * process's chain (sealer.ts) knows only the anchor records it read or committed, so an older
 * copy put back between what one process saw and what another wrote passes the first one's own
 * checks. `look` is the chain's read-and-check of the stored record outside a write (every
 * RECHECK_MS, and on demand). Two things close the gap:
 *
 * - `compare`: a verified Keeper anchor (a status answer of the Keeper probe, or of a push that
 *   found the Keeper ahead: pusher.ts) becomes the chain's floor for every record it reads
 *   from now on (`noteKeeper`: each write's, and every look's), and when it is above what the
 *   chain read, the store's record is read (AFTER the Keeper answered) and checked against it
 *   at once: a Keeper only gets a counter once the store committed it (or as evidence of a
 *   rollback), so a store below it went back (`behind_keepers`).
 * - `holdEvidence`: a process that found a rollback hands every Keeper below it a counter far
 *   above anything written ({@link EVIDENCE_MARGIN}), and again every `recheckMs` while
 *   refused (another process's push may land over it), so every other process finds the store
 *   behind the Keepers at its next status, however many writes it made on the copy
 *   meanwhile, and a restart's check refuses too.
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
}

export class KeeperWitness {
  readonly #host: WitnessHost;
  readonly #keepers: KeeperAnchors;
  readonly #recheckMs: number;
  /** The Keeper counter being compared with the store, and a higher one to compare next. */
  #comparing: bigint | undefined;
  #next: bigint | undefined;
  #evidence: NodeJS.Timeout | undefined;

  constructor(host: WitnessHost, keepers: KeeperAnchors, recheckMs: number) {
    this.#host = host;
    this.#keepers = keepers;
    this.#recheckMs = recheckMs;
  }

  /**
   * The store's record, read and checked by the chain while serving (the periodic look, and a
   * comparison): true when it passed. A write that read a newer record meanwhile makes this
   * answer possibly older than what the chain has seen: no rollback (the write checked it),
   * and false.
   */
  async look(): Promise<boolean> {
    const chain = this.#host.servingChain();
    if (!chain) return false;
    const seen = chain.committed;
    let stored: Uint8Array | null;
    try {
      stored = await this.#host.read();
    } catch {
      return false; // the store does not answer: its own health reporting says so
    }
    if (this.#host.servingChain() !== chain || chain.committed !== seen) return false;
    try {
      chain.check(stored);
      return true;
    } catch {
      return false; // refused: the chain's onRollback has run (alarm, or the stale check)
    }
  }

  /** A verified Keeper anchor `theirs`: the chain's floor from now on; checked at once when above what it read. */
  async compare(theirs: bigint): Promise<void> {
    const chain = this.#host.servingChain();
    if (!chain) return;
    chain.noteKeeper(theirs);
    if (theirs <= chain.committed) return;
    if (this.#comparing !== undefined) {
      if (theirs > this.#comparing && (this.#next === undefined || theirs > this.#next)) this.#next = theirs;
      return;
    }
    this.#comparing = theirs;
    try {
      await this.look();
    } finally {
      this.#comparing = undefined;
      const next = this.#next;
      this.#next = undefined;
      if (next !== undefined) void this.compare(next);
    }
  }

  /** Hands the Keepers `counter` once `after` settled, then again every recheckMs until `stopped`. */
  holdEvidence(key: AnchorKey, counter: bigint, o: { after?: Promise<void> | undefined; stopped: () => boolean }): void {
    void this.#keepers.raise(key, counter, o);
    this.release();
    const timer = setInterval(() => {
      if (o.stopped()) clearInterval(timer);
      else void this.#keepers.raise(key, counter, { stopped: o.stopped });
    }, this.#recheckMs);
    timer.unref();
    this.#evidence = timer;
  }

  /** Stops handing over evidence (accepted, or stopping). */
  release(): void {
    clearInterval(this.#evidence);
    this.#evidence = undefined;
  }
}
