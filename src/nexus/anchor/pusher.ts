/**
 * Pushes the store's latest rollback anchor to every Keeper (`/v1/store/anchor`):
 * debounced after writes (at most one round per `debounceMs`, plus one more if writes came
 * in while a round ran), after every share push to a Keeper, and to a Keeper whose status
 * shows another anchor than the latest (the status probe). Failures are logged at a bounded
 * rate and counted, never thrown: a Keeper that misses one gets it on the next round or probe.
 *
 * A Keeper holding a VERIFIED anchor above ours is never overwritten: when the store holds
 * at least as much (another Nexus process on the same store pushed it) we catch up; when the
 * store's record verifies below it (or is gone), the store went back under this process —
 * an older copy put back that another worker or instance saw the newer state of, or a
 * rollback the start-up check did not see because the Keeper was unreachable then — and
 * `onBehind` refuses service (guard.ts). A stored record that does not verify is left to the
 * guard's own look (it may be another process's root-key rotation).
 */
import { createLogThrottle, errInfo, type Logger } from '../../lib/index.js';
import { keeperFailureFields, type KeeperClient, type KeeperStatus } from '../../keeper/index.js';
import type { CommitAnchor } from '../../store/index.js';
import type { AnchorKey } from './mac.js';

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
  /** A verified Keeper anchor is above the store's verified counter (0: no record): a rollback. */
  onBehind?: (keeperCounter: bigint, storeCounter: bigint) => void;
}

const AHEAD_LOG_INTERVAL_MS = 60_000;

export class AnchorPusher {
  readonly #o: AnchorPusherOptions;
  readonly #throttle;
  #latest: { record: Uint8Array; counter: bigint } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopped = false;
  /** When the "keeper ahead" alarm was last logged, per Keeper. */
  readonly #aheadLogged = new Map<number, number>();

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

  /** Sends Keeper `pos` (1-based) the latest anchor; never throws. */
  async pushTo(pos: number): Promise<void> {
    const latest = this.#latest;
    const url = this.#o.peers[pos - 1];
    if (this.#stopped || !latest || url === undefined) return;
    try {
      await this.#o.client.putAnchor(url, latest.record, this.#o.timeoutMs);
      this.#o.observer?.anchorPushed(pos, Number(latest.counter));
    } catch (e) {
      this.#throttle.warn(`anchor_push_${pos}`, { keeperId: pos, reason: errInfo(e), ...keeperFailureFields(e) }, 'rollback anchor push failed');
    }
  }

  /** The status probe saw Keeper `pos`: re-send the anchor when it lacks the latest. */
  onStatus(pos: number, st: KeeperStatus): void {
    const latest = this.#latest;
    if (this.#stopped || !latest) return;
    const theirs = st.anchor === undefined ? undefined : this.#o.key.open(st.anchor);
    if (theirs === latest.counter) return;
    if (theirs !== undefined && theirs > latest.counter) {
      void this.#ahead(pos, theirs);
      return;
    }
    void this.pushTo(pos);
  }

  /**
   * A Keeper holds a verified anchor above ours. Another Nexus process on the same store may
   * have pushed it: the store then holds at least as much, and we catch up. A store that
   * verifies below it lost what that anchor covered: `onBehind` (without it, an alarm line at
   * a bounded rate); never overwritten.
   */
  async #ahead(pos: number, theirs: bigint): Promise<void> {
    let record: Uint8Array | null;
    try {
      record = await this.#o.anchor.read(); // read AFTER the Keeper answered: covers what it showed
    } catch {
      return; // the store is failing: its own health logging says so
    }
    const stored = record === null ? 0n : this.#o.key.open(record);
    if (record !== null && stored !== undefined && stored >= theirs) {
      if (this.#latest === undefined || stored > this.#latest.counter) this.#latest = { record, counter: stored };
      if (stored > theirs) await this.pushTo(pos);
      return;
    }
    if (stored !== undefined && this.#o.onBehind && !this.#stopped) return this.#o.onBehind(theirs, stored);
    const now = Date.now();
    if (now - (this.#aheadLogged.get(pos) ?? 0) < AHEAD_LOG_INTERVAL_MS) return;
    this.#aheadLogged.set(pos, now);
    this.#o.logger.error({ alarm: 'rollback_anchor_ahead', keeperId: pos, keeperCounter: Number(theirs), storeCounter: Number(stored ?? 0n) },
      'a keeper holds a rollback anchor ahead of the store: the store may have lost acknowledged writes; restart Nexus to run the rollback check');
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
