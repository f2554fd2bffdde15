/**
 * A listing's slices paced by the policy-pattern work done in each turn of the event loop (FI-13).
 *
 * Each decision is bounded (`MAX_DECISION_WORK` units of pattern matching, ~10 ms at worst).
 * A listing decides in slices of a few milliseconds, one slice of all listings per turn
 * (`sliceTurn`), but a slice always decides at least one path, and requests decided in the same
 * turn add their own work. The pacer counts the pattern work done in the current turn, by
 * requests and listings alike; once it passes `maxWorkPerTurn`, a listing ends its slice there
 * and waits for its next turn. Requests themselves are never put off: a caller's own decision
 * does not wait behind listings queued by someone else.
 */
import { MAX_DECISION_WORK } from './engine.js';

/** What the pacer reads: the engine's running count of pattern work units. */
export interface PatternWorkCounter {
  readonly patternWork: number;
}

/** Pattern work one turn may do before a listing ends its slice: two whole decision bounds. */
export const MAX_WORK_PER_TURN = 2 * MAX_DECISION_WORK;

export class DecisionPacer {
  #armed = false;
  #turnStart = 0;
  readonly #disarm = (): void => {
    this.#armed = false;
  };

  constructor(
    private readonly engine: PatternWorkCounter,
    private readonly maxWorkPerTurn = MAX_WORK_PER_TURN,
  ) {}

  /** True when this turn of the event loop already did `maxWorkPerTurn` of pattern work. */
  overTurn(): boolean {
    const work = this.engine.patternWork;
    if (!this.#armed) {
      this.#armed = true;
      this.#turnStart = work;
      setImmediate(this.#disarm);
      return false;
    }
    return work - this.#turnStart >= this.maxWorkPerTurn;
  }
}
