/**
 * Reading request bodies a little per turn of the event loop (FI-12).
 *
 * libuv reads a readable socket up to 32 times per turn, and a request stream resumed while
 * its data is being handled (from a consumer's `await`, or a discarding `data` handler) keeps
 * that loop going: a sender pushing as fast as it can had up to 2 MiB read, decrypted and
 * handled per turn, ahead of every other connection. A reader that has taken
 * {@link TURN_READ_BYTES} in the current turn resumes its stream on the next turn instead.
 * (Cipher streams, which read ahead on purpose, are not paced this way: their read-ahead bound
 * holds them.)
 */
import type { Readable } from 'node:stream';

/** Bytes one body reader takes per turn of the event loop before it waits for the next turn. */
export const TURN_READ_BYTES = 64 * 1024;

/** The current turn, advanced by one shared check-phase callback (armed by whoever asks). */
let turn = 0;
let armed = false;
const advance = (): void => {
  turn++;
  armed = false;
};
function currentTurn(): number {
  if (!armed) {
    armed = true;
    setImmediate(advance);
  }
  return turn;
}

export class TurnPacedReader {
  #turn = -1;
  #bytes = 0;

  /** Counts `n` bytes read in this turn. */
  count(n: number): void {
    const now = currentTurn();
    if (now !== this.#turn) {
      this.#turn = now;
      this.#bytes = 0;
    }
    this.#bytes += n;
  }

  /** True when this reader has had its share of the current turn. */
  get spent(): boolean {
    return this.#turn === currentTurn() && this.#bytes >= TURN_READ_BYTES;
  }

  /** Resumes `stream` now, or on the next turn once this turn's share is spent (then only if `wanted()` still holds). */
  resume(stream: Readable, wanted: () => boolean): void {
    if (!this.spent) stream.resume();
    else setImmediate(() => {
      if (wanted()) stream.resume();
    });
  }
}
