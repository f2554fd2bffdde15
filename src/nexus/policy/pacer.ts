/**
 * Costly policy decisions paced over turns of the event loop (FI-13).
 *
 * Each decision is bounded on its own ({@link MAX_DECISION_WORK} units of pattern matching,
 * 6–12 ms here, more under load), but requests that arrive together are decided in the same
 * turn of the loop, next to a listing's slice: in a black-box run, a caller holding 100 costly
 * patterns sent ten requests at once and their decisions held the loop for 35–62 ms in one
 * turn. The engine reports every pattern it runs (`spendTurnWork`, lib/yield.ts), and a turn
 * may do {@link PATTERN_WORK_PER_TURN} of it:
 * - a request whose decision could cost more than what is left of the turn waits for a turn
 *   of its own (`sliceTurn`, the turns listings take, shared fairly by caller);
 * - a listing ends its slice when the next decision could cost more than what is left, and
 *   makes a path's two decisions (`list`, then `read`) in two turns when need be.
 * What a decision could cost is the caller's: the sum of its path patterns' program sizes
 * times the longest path (at most one bound). Callers whose policies are cheap (literal path
 * patterns, or a few small ones) fit in any turn with room left, so another caller's costly
 * work delays them by one turn at most and never slows their listings to a path per turn.
 */
import { sliceTurn, turnWorkFits } from '../../lib/index.js';
import { MAX_PATH_LENGTH } from '../../protocol/index.js';
import type { SpiffeId } from '../../spiffe/index.js';
import { MAX_DECISION_WORK } from './engine.js';

/** Pattern work one turn of the event loop may do: one whole decision bound (6–12 ms here). */
export const PATTERN_WORK_PER_TURN = MAX_DECISION_WORK;

/** What the pacer asks of the engine. */
export interface DecisionCosts {
  worstDecisionWork(peer: SpiffeId | string, pathLength: number): number;
}

export class DecisionPacer {
  constructor(private readonly engine: DecisionCosts) {}

  /** The most pattern work one decision for `peer` could take (0: nothing to pace). */
  worst(peer: SpiffeId): number {
    return this.engine.worstDecisionWork(peer, MAX_PATH_LENGTH);
  }

  /**
   * Before a request's decision (the router's `beforeDecision`): undefined to decide now, or a
   * turn to wait for, when `peer`'s decision could cost more than this turn has left.
   */
  readonly beforeDecision = (peer: SpiffeId): Promise<void> | undefined => {
    if (turnWorkFits(MAX_DECISION_WORK, PATTERN_WORK_PER_TURN)) return undefined; // fast path: nothing spent yet
    const worst = this.worst(peer);
    if (worst === 0 || turnWorkFits(worst, PATTERN_WORK_PER_TURN)) return undefined;
    return this.#waitForRoom(peer.toString(), worst);
  };

  /**
   * For a listing by `peer`: true when its next decision could cost more than this turn has
   * left (the slice ends, or a path's `read` decision waits for the next turn); undefined when
   * `peer` has nothing to pace.
   */
  listingTurnSpent(peer: SpiffeId): (() => boolean) | undefined {
    const worst = this.worst(peer);
    if (worst === 0) return undefined;
    return () => !turnWorkFits(worst, PATTERN_WORK_PER_TURN);
  }

  async #waitForRoom(owner: string, units: number): Promise<void> {
    do await sliceTurn(owner);
    while (!turnWorkFits(units, PATTERN_WORK_PER_TURN));
  }
}
