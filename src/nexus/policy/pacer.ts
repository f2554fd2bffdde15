/**
 * Costly policy decisions paced over turns of the event loop (FI-13).
 *
 * Each decision is bounded on its own ({@link MAX_DECISION_WORK} units of pattern matching,
 * 4–12 ms here, more under load), but requests that arrive together are decided in the same
 * turn of the loop, next to a listing's slice: in a black-box run, a caller holding 100 costly
 * patterns sent ten requests at once and their decisions held the loop for 35–62 ms in one
 * turn. The engine reports every pattern it runs (`spendTurnWork`, lib/turn-work.ts) and a turn
 * may do {@link PATTERN_WORK_PER_TURN} of it. Before a decision that could cost more than
 * {@link CHEAP_DECISION}, the pacer checks that its bound fits in what the turn has left (and
 * that nothing already waits); otherwise it waits for a turn of its own (`freshTurn`, in which
 * nothing has been spent yet, given out one per turn, fairly by caller):
 * - a request waits before its identity pre-check and again before its full check; not knowing the
 *   route's rule, it bounds the decision by the caller's path patterns of any permission on
 *   the body's `path` and on each gate path;
 * - a listing ends its slice before a path whose decision does not fit (or, at the slice's
 *   first path, waits for a turn of its own), and makes a path's `read` decision a turn later
 *   when that one does not fit.
 * Cheap decisions (literal path patterns, a few small ones, or patterns whose literal prefix
 * the path lacks) never wait: another caller's costly work delays them by nothing more than
 * the turn it takes. The operator and Lite workloads never run policy patterns.
 */
import { freshTurn, freshTurnWaiting, turnWorkFits } from '../../lib/index.js';
import type { Permission } from '../../protocol/index.js';
import type { SpiffeId } from '../../spiffe/index.js';
import { MAX_DECISION_WORK } from './engine.js';

/** Pattern work one turn of the event loop may do: one whole decision bound (4–12 ms here). */
export const PATTERN_WORK_PER_TURN = MAX_DECISION_WORK;

/** A decision bounded by at most this much pattern work is never put off (about 0.3 ms here). */
export const CHEAP_DECISION = MAX_DECISION_WORK / 20;

/** What the pacer asks of the engine. */
export interface DecisionCosts {
  decisionBound(peer: SpiffeId | string, path: string, perm?: Permission): number;
}

export interface PacerOptions {
  /** Callers whose decisions never run policy patterns (the operator, Lite workloads). */
  exempt: (peer: SpiffeId) => boolean;
  /** The fixed paths a route's rule may decide on (SPIKE's gate paths). */
  gatePaths: readonly string[];
}

/** A decision bounded by `units` may run now: cheap, or it fits and nothing waits for a turn of its own. */
const fits = (units: number): boolean => units <= CHEAP_DECISION || (!freshTurnWaiting() && turnWorkFits(units, PATTERN_WORK_PER_TURN));

export class DecisionPacer {
  constructor(
    private readonly engine: DecisionCosts,
    private readonly opts: PacerOptions,
  ) {}

  /**
   * Before a request's identity pre-check (`body` undefined) and before its full check (the
   * router's `beforeDecision`): undefined to decide now, or a turn to wait for.
   */
  readonly beforeDecision = (peer: SpiffeId, body?: unknown): Promise<void> | undefined => {
    if (fits(MAX_DECISION_WORK)) return undefined; // nothing spent this turn, nobody waiting: any decision fits
    return fits(this.#requestBound(peer, body)) ? undefined : freshTurn(peer.toString());
  };

  /** True when `peer`'s `perm` decision on `path` may run in this turn (a listing's check before each decision). */
  fits(peer: SpiffeId, path: string, perm: Permission): boolean {
    return this.opts.exempt(peer) || fits(this.engine.decisionBound(peer, path, perm));
  }

  /** A turn of its own for a decision of `peer` that did not fit (any decision fits in it). */
  freshTurn(peer: SpiffeId): Promise<void> {
    return freshTurn(peer.toString());
  }

  /** The most one decision of the request can cost: on any gate path, or on the body's `path`, for any permission. */
  #requestBound(peer: SpiffeId, body: unknown): number {
    if (this.opts.exempt(peer)) return 0;
    let bound = 0;
    for (const gate of this.opts.gatePaths) bound = Math.max(bound, this.engine.decisionBound(peer, gate));
    const path = typeof body === 'object' && body !== null ? (body as { path?: unknown }).path : undefined;
    return typeof path === 'string' ? Math.max(bound, this.engine.decisionBound(peer, path)) : bound;
  }

}
