/**
 * Costly synchronous work counted per turn of the event loop (FI-13: policy-pattern matching).
 *
 * Requests that arrive together are handled in the same turn, so bounding each one's work is not
 * enough: {@link spendTurnWork} counts what the current turn did (in the caller's units) and
 * {@link turnWorkFits} says whether more fits in a budget. Work that does not fit waits for a
 * turn of its own ({@link freshTurn}).
 *
 * The count restarts at a timers phase (a tick timer, armed by the work), at most once per turn
 * (a check phase must pass between two restarts), so what I/O callbacks and the check phase of
 * one turn do counts together.
 * Right after a restart one waiter is let go, in that same timers phase: it always finds the
 * turn with nothing spent (it cannot be passed over by whatever the poll phase brings), waiters
 * are served by owner in rotation, and while any waits, newcomers queue behind them
 * ({@link freshTurnWaiting}).
 */
import { RoundRobin } from './yield.js';

let spent = 0;
let tick: NodeJS.Timeout | null = null;
/** False from a restart of the count until the loop's next check phase: at most one restart per turn. */
let turnEnded = true;
const endTurn = (): void => {
  turnEnded = true;
};
const waiters = new RoundRobin();

function arm(): void {
  tick ??= setTimeout(onTick, 0);
}

function onTick(): void {
  tick = null;
  if (!turnEnded) {
    arm();
    return;
  }
  spent = 0;
  turnEnded = false; // the next restart comes a whole turn later
  setImmediate(endTurn);
  if (waiters.size > 0) {
    waiters.releaseNext(); // its work runs right after this callback, in this fresh turn
    if (waiters.size > 0) arm();
  }
}

/** Records `units` of costly work done in the current turn. */
export function spendTurnWork(units: number): void {
  if (!(units > 0)) return;
  spent += units;
  arm();
}

/** True when `units` more costly work fit in this turn's `budget` (always on a turn with none done yet). */
export function turnWorkFits(units: number, budget: number): boolean {
  return spent === 0 || spent + units <= budget;
}

/** True while some work waits for a turn of its own (newcomers should queue behind it). */
export function freshTurnWaiting(): boolean {
  return waiters.size > 0;
}

/** Resolves in a later turn in which nothing costly has been done yet; `owner` (e.g. the caller) shares turns fairly. */
export function freshTurn(owner = ''): Promise<void> {
  return new Promise((resolve) => {
    waiters.add(owner, resolve);
    arm();
  });
}
