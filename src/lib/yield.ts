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
 * Waiters are let go in the check phase, one per turn. The count of costly work restarts only at
 * a timers phase that follows a check phase, so what I/O callbacks and a released waiter do in
 * one turn of the loop counts together; whoever must stay within the budget asks
 * {@link turnWorkFits} right before its work, wherever it runs.
 */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waiting slices by owner; Map order is the round-robin order (an owner served goes to the back). */
const waiting = new Map<string, Array<() => void>>();
let releasing = false;

function releaseOne(): void {
  const first = waiting.entries().next();
  if (!first.done) {
    const [owner, queue] = first.value;
    waiting.delete(owner);
    const resolve = queue.shift()!;
    if (queue.length > 0) waiting.set(owner, queue); // to the back of the round
    resolve();
  }
  if (waiting.size > 0) setImmediate(releaseOne);
  else releasing = false;
}

/** Resolves on a later turn of the event loop in which no other slice was let go; `owner` (e.g. the caller) shares turns fairly. */
export function sliceTurn(owner = ''): Promise<void> {
  return new Promise((resolve) => {
    const queue = waiting.get(owner);
    if (queue !== undefined) queue.push(resolve);
    else waiting.set(owner, [resolve]);
    if (!releasing) {
      releasing = true;
      setImmediate(releaseOne);
    }
  });
}

/** Costly work done in the current turn. */
let spent = 0;
let tick: NodeJS.Timeout | null = null;
/** False from costly work until the loop's next check phase: only a tick after that starts a new turn. */
let turnEnded = true;
const endTurn = (): void => {
  turnEnded = true;
};

/** The turn's count restarts at a timers phase that follows a check phase (a whole turn later). */
function onTick(): void {
  tick = null;
  if (!turnEnded) {
    tick = setTimeout(onTick, 0);
    return;
  }
  spent = 0;
}

/** Records `units` of costly work done in the current turn (the budget is the caller's: {@link turnWorkFits}). */
export function spendTurnWork(units: number): void {
  if (!(units > 0)) return;
  spent += units;
  if (turnEnded) {
    turnEnded = false;
    setImmediate(endTurn);
  }
  tick ??= setTimeout(onTick, 0);
}

/** True when `units` more of costly work fit in this turn's `budget` (always on a turn with none done yet). */
export function turnWorkFits(units: number, budget: number): boolean {
  return spent === 0 || spent + units <= budget;
}
