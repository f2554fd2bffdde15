/**
 * Giving the event loop back during long synchronous work.
 *
 * {@link yieldToLoop} lets the loop run queued I/O before a long loop continues, so one big
 * request (listing or destroying thousands of records) cannot stall every other client.
 *
 * {@link sliceTurn} is for work whose slices are costly (a listing's policy decisions, up to
 * several milliseconds per path): a turn shared by every caller in the process, at most one
 * waiter let go per turn of the event loop. With `yieldToLoop` alone, every waiting scan ran
 * its slice in the same turn, so ten listings at once held the loop for ten slices; through
 * here other requests are served between any two slices. Waiters are served by `owner` in
 * turn (round robin; in arrival order within one owner), so one owner's many waiting slices
 * delay another owner's by one turn each round, not by all of them.
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
