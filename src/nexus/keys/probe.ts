/**
 * The Keeper status probe (fast re-hydration): once a root key is installed, every
 * `intervalMs` (SPIKE_NEXUS_KEEPER_PROBE_INTERVAL, default 2 s) each Keeper is asked for its
 * status (`/v1/store/status`: epoch, id, anchor — never a share value; short timeout). A
 * Keeper that holds no share, or a share of another epoch or id than the current sharing
 * (it restarted empty, or a Bootstrap identity refilled it), gets its share pushed at once
 * (`pushTo`), so it holds it again within seconds instead of at the next periodic re-push.
 * A Keeper found empty lost its share (it keeps it in memory only: it restarted or crashed):
 * that is one ERROR line per loss, however many rounds the push takes; the rest is info.
 * `onStatus` lets the rollback anchor follow (anchor/pusher.ts). One round at a time; each
 * failed call is logged at debug. A Keeper of the current list that stops answering (no HTTP
 * answer at all: down, unreachable, timed out) is named once in a WARN line when the round
 * finds it so, and once at info when it answers again; the round in which fewer Keepers
 * answer than the threshold adds one WARN line saying that Nexus keeps serving with the key
 * it holds but could not recover it if it restarted now (FI-04), and one info line when
 * enough answer again. So an outage is visible within one interval (default 2 s) whatever
 * the traffic, not only at the periodic push (5 min) or after a write (anchor push); a long
 * outage writes no more lines than a short one, and a flapping Keeper's WARN lines go through
 * a log throttle (one per kind per 30 s, then a count).
 *
 * During a sharing move waiting for its commit (`moving`, keys/move.ts), the Keepers of the
 * move's list are probed too, and one that no longer holds its share of the new epoch (it
 * restarted empty after acknowledging its pending share) gets its current and pending
 * shares re-sent at once, so the move can commit.
 */
import { createLogThrottle, errInfo, type Logger } from '../../lib/index.js';
import { KeeperCallError, keeperFailureFields, type KeeperClient, type KeeperStatus } from '../../keeper/index.js';
import type { KeyState } from './state.js';

/** A sharing move between its pending push and its commit (SharingMover.inFlight). */
export interface PendingMoveView {
  readonly epoch: number;
  readonly peers: readonly string[];
  /** Re-sends `url` its current share (when it has one) and its pending share; true when acknowledged. */
  repush(url: string): Promise<boolean>;
}

interface KeeperProbeOptions {
  peers: readonly string[];
  client: KeeperClient;
  keys: KeyState;
  logger: Logger;
  intervalMs: number;
  /** Deadline of one status call (default min(1500 ms, intervalMs)). */
  timeoutMs?: number;
  /** Sends Keeper `pos` its share now; true when acknowledged. */
  pushTo(pos: number): Promise<boolean>;
  /** Every status answer (e.g. the rollback anchor); must not throw. */
  onStatus?: (pos: number, st: KeeperStatus) => void;
  /** The move waiting for its commit, if any. */
  moving?: () => PendingMoveView | undefined;
}

/** The Keeper lacks its share of a move's new epoch (neither pending nor current). */
export function lacksMoveShare(st: KeeperStatus, moveEpoch: number): boolean {
  return st.pending !== moveEpoch && st.epoch !== moveEpoch;
}

/**
 * Why a Keeper needs its share again, or undefined when it holds the current one. A share of
 * the right epoch and id that Nexus never sent (`unconfirmed`: a Bootstrap identity filled the
 * Keeper after it restarted, maybe with any value) is replaced too: this Nexus holds the key.
 */
export function staleReason(st: KeeperStatus, pos: number, epoch: number): 'empty' | 'other_epoch' | 'other_id' | 'unconfirmed' | undefined {
  if (st.epoch === null) return 'empty';
  if (st.epoch !== epoch) return 'other_epoch';
  if (st.id !== null && st.id !== pos) return 'other_id';
  if (st.confirmed === false) return 'unconfirmed';
  return undefined;
}

export class KeeperProbe {
  readonly #o: KeeperProbeOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;
  /** Positions (current list) that did not answer their last status call. */
  readonly #silent = new Set<number>();
  /** Keepers found empty (they lost their share) and not re-hydrated yet: one ERROR line per loss. */
  readonly #lost = new Set<number>();
  /** Whether the last round had fewer answering Keepers than the threshold. */
  #belowThreshold = false;
  /** A Keeper that flaps is named at most once per 30 s (then counted). */
  readonly #throttle;

  constructor(o: KeeperProbeOptions) {
    this.#o = o;
    this.#throttle = createLogThrottle(o.logger, { intervalMs: 30_000 });
  }

  /** Starts probing once a key is installed. */
  start(): void {
    this.#o.keys.onReady(() => {
      if (this.#stopped || this.#timer) return;
      this.#timer = setInterval(() => this.probeNow(), this.#o.intervalMs);
      this.#timer.unref?.();
    });
  }

  /** One round now (skipped while one runs). */
  probeNow(): Promise<void> {
    this.#round ??= this.#probeAll().finally(() => { this.#round = undefined; });
    return this.#round;
  }

  async #probeAll(): Promise<void> {
    // Positions in the CURRENT sharing's Keeper list (share ids), as the re-push uses them.
    const peers = this.#o.keys.sharing()?.peers ?? this.#o.peers;
    const move = this.#o.moving?.();
    const extra = move ? move.peers.filter((u) => !peers.includes(u)) : [];
    const answered = await Promise.all([...peers.map((url, i) => this.#probeOne(url, i + 1, move)), ...extra.map((url) => this.#probeOne(url, 0, move))]);
    if (!this.#stopped) this.#noteAnswers(answered.slice(0, peers.length));
  }

  /** The transitions of who answers (see the module header): bounded lines, never per round. */
  #noteAnswers(answered: readonly boolean[]): void {
    const { logger } = this.#o;
    const threshold = this.#o.keys.sharing()?.threshold;
    const fields = { answering: answered.filter(Boolean).length, keepers: answered.length, ...(threshold !== undefined ? { threshold } : {}) };
    answered.forEach((ok, i) => {
      const pos = i + 1;
      if (!ok && !this.#silent.has(pos)) {
        this.#silent.add(pos);
        this.#throttle.warn(`keeper_silent_${pos}`, { keeperId: pos, ...fields }, 'keeper not answering');
      } else if (ok && this.#silent.delete(pos)) {
        logger.info({ keeperId: pos, ...fields }, 'keeper answering again');
      }
    });
    const below = threshold !== undefined && fields.answering < threshold;
    if (below && !this.#belowThreshold) {
      this.#throttle.warn('keepers_below_threshold', { alarm: 'keepers_below_threshold', ...fields },
        'fewer keepers answer than the threshold: Nexus keeps serving with the root key it holds, but could not recover it if it restarted now; bring the keepers back');
    } else if (!below && this.#belowThreshold) {
      logger.info(fields, 'keepers answering again reach the threshold');
    }
    this.#belowThreshold = below;
  }

  /** One Keeper; `pos` 0: a Keeper only of the move's new list. False: no HTTP answer at all. */
  async #probeOne(url: string, pos: number, move: PendingMoveView | undefined): Promise<boolean> {
    const { client, keys, logger } = this.#o;
    let st: KeeperStatus;
    try {
      st = await client.status(url, this.#o.timeoutMs ?? Math.min(1500, this.#o.intervalMs));
    } catch (e) {
      logger.debug({ keeperId: pos, reason: errInfo(e), ...keeperFailureFields(e) }, 'keeper status probe failed');
      // An error status or a malformed answer (a Keeper without the status route) still answered.
      return e instanceof KeeperCallError && e.code !== 'keeper_unreachable';
    }
    if (this.#stopped) return true;
    const sharing = keys.sharing();
    const why = sharing && pos > 0 ? staleReason(st, pos, sharing.epoch) : undefined;
    // A Keeper outside the configuration is never sent a share (repush.ts says so once).
    if (why !== undefined && client.mayReceiveShares(url)) {
      if (why === 'empty' && !this.#lost.has(pos)) {
        // A Keeper holds its share in memory only: empty means it restarted or crashed.
        this.#lost.add(pos);
        logger.error({ keeperId: pos, reason: why }, 'keeper lost its share (it restarted or crashed); pushing it now');
      } else {
        logger.info({ keeperId: pos, reason: why }, 'keeper lacks its current share; pushing it now');
      }
      const ok = await this.#o.pushTo(pos);
      if (ok) {
        this.#lost.delete(pos);
        logger.info({ keeperId: pos }, 'keeper re-hydrated');
      }
    }
    const newPos = move ? move.peers.indexOf(url) + 1 : 0;
    if (move && newPos > 0 && lacksMoveShare(st, move.epoch) && !this.#stopped) {
      logger.info({ keeperId: newPos, toEpoch: move.epoch }, 'keeper lacks its pending share of the sharing move; pushing it now');
      if (await move.repush(url)) logger.info({ keeperId: newPos, toEpoch: move.epoch }, 'keeper re-hydrated with its pending share');
    }
    if (pos > 0) this.#o.onStatus?.(pos, st);
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#throttle.close();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round?.catch(() => undefined);
  }
}
