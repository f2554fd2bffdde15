/**
 * Giving the event loop back during long synchronous work.
 *
 * {@link yieldToLoop} lets the loop run queued I/O before a long loop continues, so one big
 * request (listing or destroying thousands of records) cannot stall every other client.
 *
 * Long work in slices (a listing's policy decisions, up to several milliseconds per path) takes
 * turns of the event loop, process-wide:
 * - {@link sliceTurn} waits for a turn: at most one waiter is let go per turn, and
 *   waiters are served by `owner` in rotation (round robin; in arrival order within one owner),
 *   so one owner's many waiting slices delay another owner's by one turn each round, not by
 *   all of them. With `yieldToLoop` alone, every waiting scan ran its slice in the same turn, so
 *   ten listings at once held the loop for ten slices.
 *   Waiters are let go in the check phase, one per turn.
 * The pattern work itself, of slices and requests alike, is counted per turn in turn-work.ts.
 */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waiters by owner, served in rotation (round robin; in arrival order within one owner). */
export class RoundRobin {
  /** Map order is the round-robin order: an owner served goes to the back. */
  readonly #queues = new Map<string, Array<() => void>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(owner: string, resolve: () => void): void {
    const queue = this.#queues.get(owner);
    if (queue !== undefined) queue.push(resolve);
    else this.#queues.set(owner, [resolve]);
    this.#size++;
  }

  /** Lets the next waiter go (false when none waits). */
  releaseNext(): boolean {
    const first = this.#queues.entries().next();
    if (first.done) return false;
    const [owner, queue] = first.value;
    this.#queues.delete(owner);
    const resolve = queue.shift()!;
    if (queue.length > 0) this.#queues.set(owner, queue); // to the back of the round
    this.#size--;
    resolve();
    return true;
  }
}

const slices = new RoundRobin();
let releasing = false;

function releaseOne(): void {
  slices.releaseNext();
  if (slices.size > 0) setImmediate(releaseOne);
  else releasing = false;
}

/** Resolves on a later turn of the event loop in which no other slice was let go; `owner` (e.g. the caller) shares turns fairly. */
export function sliceTurn(owner = ''): Promise<void> {
  return new Promise((resolve) => {
    slices.add(owner, resolve);
    if (!releasing) {
      releasing = true;
      setImmediate(releaseOne);
    }
  });
}
