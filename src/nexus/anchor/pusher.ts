/**
 * Pushes the store's latest rollback anchor to every Keeper (`/v1/store/anchor`):
 * debounced after writes (at most one round per `debounceMs`, plus one more if writes came
 * in while a round ran), after every share push to a Keeper, and to a Keeper whose status
 * shows another anchor than the latest (the status probe). Failures are logged at a bounded
 * rate and counted, never thrown: a Keeper that misses one gets it on the next round or probe.
 *
 * A Keeper holding a VERIFIED anchor above ours is never overwritten: each push asks the Keeper
 * first, and a status (the probe's or that one) showing a higher verified anchor is left alone
 * and handed to `onAhead` (the guard reads the store after it: caught up, or a rollback). Another
 * process on the same store that has not yet seen a rollback therefore cannot push its lower
 * counter over the evidence another one handed the Keepers (guard.ts), and a Keeper's lower record
 * is replaced only once the store's history was found to hold it (`bound`: a process on an older
 * copy put back and written on cannot erase the record that shows it).
 */
import { createLogThrottle, errInfo, type Logger } from '../../lib/index.js';
import { keeperFailureFields, type KeeperClient, type KeeperStatus } from '../../keeper/index.js';
import type { CommitAnchor } from '../../store/index.js';
import type { AnchorKey } from './mac.js';
import type { BoundRecord } from './sealer.js';

/** Metrics hook (src/ops); must not throw. */
export interface AnchorObserver {
  /** Keeper `index` (1..n) acknowledged the anchor with `counter`. */
  anchorPushed(index: number, counter: number): void;
  /** The store's counter as last pushed. */
  anchorCounter(counter: number): void;
  /** 1 while Nexus refuses to serve because of a detected rollback. */
  rollbackDetected(detected: boolean): void;
}

interface AnchorPusherOptions {
  peers: readonly string[];
  client: KeeperClient;
  anchor: CommitAnchor;
  key: AnchorKey;
  logger: Logger;
  debounceMs: number;
  timeoutMs: number;
  observer?: AnchorObserver;
  /** A Keeper holds a verified anchor above the latest pushed (not overwritten; must not throw). */
  onAhead: (keeperCounter: bigint) => void;
  /**
   * Before a Keeper's verified record is replaced: true only when the store's history holds it
   * (or no longer holds its counter); otherwise it is left in place (another history's record is
   * the evidence; a store that did not answer decides nothing). Must not throw.
   */
  bound?: (seen: BoundRecord) => Promise<boolean>;
  /** The counter a Keeper's record proves (default `key.open`; after a rotation the previous key's too). */
  open?: (record: Uint8Array) => bigint | undefined;
  /**
   * This process's sharing epoch. A Keeper at a newer one (current or pending) went through a
   * rotation elsewhere: an anchor it holds that does not verify here is likely the new root's,
   * and is left to the process that holds it.
   */
  epoch?: () => number | undefined;
}

export class AnchorPusher {
  readonly #o: AnchorPusherOptions;
  readonly #throttle;
  #latest: { record: Uint8Array; counter: bigint } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopped = false;

  constructor(o: AnchorPusherOptions) {
    this.#o = o;
    this.#throttle = createLogThrottle(o.logger, { intervalMs: 30_000 });
  }

  /** Pushes now, then after writes. */
  start(): void {
    this.#o.anchor.onWrite = () => this.#schedule();
    this.#schedule(0);
  }

  /** The counter last read from the store and pushed (undefined before the first round). */
  latest(): bigint | undefined {
    return this.#latest?.counter;
  }

  #schedule(delayMs = this.#o.debounceMs): void {
    if (this.#stopped) return;
    if (this.#timer) return; // the round to come reads the store after this write
    if (this.#running) {
      this.#dirty = true; // the running round may have read the store before this write
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.pushAll().finally(() => {
        this.#running = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.#schedule();
        }
      });
    }, delayMs);
    this.#timer.unref?.();
  }

  /** Reads the store's current anchor and sends it to every Keeper. */
  async pushAll(): Promise<void> {
    try {
      const record = await this.#o.anchor.current();
      const counter = this.#o.key.open(record);
      if (!record || counter === undefined) return;
      if (this.#latest === undefined || counter >= this.#latest.counter) this.#latest = { record, counter };
      this.#o.observer?.anchorCounter(Number(counter));
    } catch (e) {
      this.#throttle.warn('anchor_read', { reason: errInfo(e) }, 'cannot read the rollback anchor from the store; keepers keep the previous one');
      return;
    }
    await Promise.all(this.#o.peers.map((_, i) => this.pushTo(i + 1)));
  }

  /** Sends Keeper `pos` (1-based) the latest anchor unless it holds as much or more; never throws. */
  async pushTo(pos: number): Promise<void> {
    const latest = this.#latest;
    const url = this.#o.peers[pos - 1];
    if (this.#stopped || !latest || url === undefined) return;
    try {
      const st = await this.#o.client.status(url, this.#o.timeoutMs);
      const theirs = st.anchor === undefined ? undefined : (this.#o.open ?? this.#o.key.open.bind(this.#o.key))(st.anchor);
      if (theirs !== undefined && theirs >= latest.counter) {
        if (theirs > latest.counter && !this.#stopped) this.#o.onAhead(theirs);
        return;
      }
      if (theirs !== undefined && st.anchor !== undefined && this.#o.bound && !(await this.#o.bound({ counter: theirs, record: st.anchor }))) return;
      if (theirs === undefined && st.anchor !== undefined && this.#movedPast(st)) return;
      if (this.#stopped) return;
      await this.#o.client.putAnchor(url, latest.record, this.#o.timeoutMs);
      this.#o.observer?.anchorPushed(pos, Number(latest.counter));
    } catch (e) {
      this.#throttle.warn(`anchor_push_${pos}`, { keeperId: pos, reason: errInfo(e), ...keeperFailureFields(e) }, 'rollback anchor push failed');
    }
  }

  /** The Keeper holds or is being given a share of a newer sharing than this process's. */
  #movedPast(st: KeeperStatus): boolean {
    const ours = this.#o.epoch?.();
    return ours !== undefined && Math.max(st.epoch ?? 0, st.pending ?? 0) > ours;
  }

  /** The status probe saw Keeper `pos`: re-send the anchor when it lacks the latest (never over a higher one). */
  onStatus(pos: number, st: KeeperStatus): void {
    const latest = this.#latest;
    if (this.#stopped || !latest) return;
    const theirs = st.anchor === undefined ? undefined : this.#o.key.open(st.anchor);
    if (theirs !== undefined && theirs >= latest.counter) return; // the guard compares a higher one with the store
    void this.pushTo(pos);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.anchor.onWrite = undefined;
    await this.#running?.catch(() => undefined);
    this.#throttle.close();
  }
}
