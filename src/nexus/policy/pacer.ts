/**
 * Policy decisions paced over turns of the event loop (FI-13).
 *
 * Each decision is bounded (`MAX_DECISION_WORK` units of pattern matching, ~10 ms at worst), but
 * requests that arrive together are decided in the same turn of the loop, next to a listing's
 * slice of decisions: in a black-box run, ten callers whose decisions each needed the whole
 * bound, plus their listings, held the loop for 50-70 ms. The pacer counts the pattern work
 * done in the current turn, by requests and listings alike; once it passes `maxWorkPerTurn`,
 * the next request's decision waits for a shared turn (`sliceTurn`, the one listings take
 * between their slices) and a listing ends its slice. Ordinary policies do little or no
 * pattern work, so their decisions never wait.
 */
import { sliceTurn } from '../../lib/index.js';
import { MAX_DECISION_WORK } from './engine.js';

/** What the pacer reads: the engine's running count of pattern work units. */
export interface PatternWorkCounter {
  readonly patternWork: number;
}

/** Pattern work one turn may do before decisions wait: two whole decision budgets. */
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

  /** The router's `beforeDecision` hook: undefined to decide now, else a turn to wait for. */
  readonly beforeDecision = (): Promise<void> | undefined => (this.overTurn() ? sliceTurn() : undefined);

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
