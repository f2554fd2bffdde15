/**
 * Giving the event loop back during long synchronous work.
 *
 * {@link yieldToLoop} lets the loop run queued I/O before a long loop continues, so one big
 * request (listing or destroying thousands of records) cannot stall every other client.
 *
 * Costly work (a listing's policy decisions, or a request's decision over costly patterns: up to
 * several milliseconds each) is paced by turns of the event loop, process-wide:
 * - {@link sliceTurn} waits for a turn of its own: at most one waiter is let go per turn, and
 *   waiters are served by `owner` in rotation (round robin; in arrival order within one owner),
 *   so one owner's many waiting slices delay another owner's by one turn each round, not by
 *   all of them. With `yieldToLoop` alone, every waiting scan ran its slice in the same turn, so
 *   ten listings at once held the loop for ten slices.
 * - {@link spendTurnWork} counts the costly work done in the current turn (in the caller's
 *   units) and {@link turnWorkFits} says whether more fits, so requests that arrive together
 *   cannot stack their costly work in one turn either: past the budget they wait for a turn.
 *
 * A turn starts at the timers phase: the pacing tick is a timer, so between a waiter let go and
 * the next one the loop has run its timers, polled for I/O and answered what was ready. (A tick
 * in the check phase, `setImmediate`, would count the I/O callbacks that ran just before it as
 * part of the next turn.)
 */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waiting slices by owner; Map order is the round-robin order (an owner served goes to the back). */
const waiting = new Map<string, Array<() => void>>();
/** Costly work done since the current turn began. */
let spent = 0;
let tick: NodeJS.Timeout | null = null;
/**
 * False from costly work or a waiter let go until the loop's next check phase: only then can a
 * tick start a new turn. (Timers are not enough on their own: a timer due during work that
 * itself runs in the timers phase may fire in that same phase.)
 */
let turnEnded = true;
const endTurn = (): void => {
  turnEnded = true;
};

function busy(): void {
  if (turnEnded) {
    turnEnded = false;
    setImmediate(endTurn);
  }
}

function onTick(): void {
  tick = null;
  if (!turnEnded) {
    schedule();
    return;
  }
  spent = 0;
  const first = waiting.entries().next();
  if (!first.done) {
    const [owner, queue] = first.value;
    waiting.delete(owner);
    const resolve = queue.shift()!;
    if (queue.length > 0) waiting.set(owner, queue); // to the back of the round
    busy();
    resolve();
    if (waiting.size > 0) schedule();
  }
}

function schedule(): void {
  tick ??= setTimeout(onTick, 0);
}

/** Resolves on a later turn of the event loop in which no other slice was let go; `owner` (e.g. the caller) shares turns fairly. */
export function sliceTurn(owner = ''): Promise<void> {
  return new Promise((resolve) => {
    const queue = waiting.get(owner);
    if (queue !== undefined) queue.push(resolve);
    else waiting.set(owner, [resolve]);
    schedule();
  });
}

/** Records `units` of costly work done in the current turn (the budget is the caller's: {@link turnWorkFits}). */
export function spendTurnWork(units: number): void {
  if (!(units > 0)) return;
  spent += units;
  busy();
  schedule(); // the next turn starts afresh
}

/** True when `units` more of costly work fit in this turn's `budget` (always on a turn with none done yet). */
export function turnWorkFits(units: number, budget: number): boolean {
  return spent === 0 || spent + units <= budget;
}
