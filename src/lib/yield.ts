/**
 * Giving the event loop back during long synchronous work.
 *
 * {@link yieldToLoop} lets the loop run queued I/O before a long loop continues, so one big
 * request (listing or destroying thousands of records) cannot stall every other client.
 *
 * {@link sliceTurn} is for work whose slices are costly (a listing's policy decisions, up to
 * several milliseconds per path): a turn shared by every caller in the process, at most one
 * waiter let go per turn of the event loop, in arrival order. With `yieldToLoop` alone, every
 * waiting scan ran its slice in the same turn, so ten listings at once held the loop for ten
 * slices; through here other requests are served between any two slices, and concurrent
 * listings share the time fairly.
 */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const waiting: Array<() => void> = [];
let releasing = false;

function releaseOne(): void {
  waiting.shift()?.();
  if (waiting.length > 0) setImmediate(releaseOne);
  else releasing = false;
}

/** Resolves on a later turn of the event loop, when no other slice was let go in that turn. */
export function sliceTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!releasing) {
      releasing = true;
      setImmediate(releaseOne);
    }
  });
}
