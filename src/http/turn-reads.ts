/**
 * Reading request bodies a little per turn of the event loop (FI-12).
 *
 * libuv reads a readable socket up to 32 times per turn, and a request stream resumed while
 * its data is being handled (from a consumer's `await`, or a discarding `data` handler) keeps
 * that loop going: a sender pushing as fast as it can had up to 2 MiB read, decrypted and
 * handled per turn, ahead of every other connection. A reader that has taken
 * {@link TURN_READ_BYTES} in the current turn resumes its stream on the next turn instead.
 */
import type { Readable } from 'node:stream';

/** Bytes one body reader takes per turn of the event loop before it waits for the next turn. */
export const TURN_READ_BYTES = 64 * 1024;

export class TurnPacedReader {
  #bytes = 0;
  #armed = false;
  readonly #reset = (): void => {
    this.#bytes = 0;
    this.#armed = false;
  };

  /** Counts `n` bytes read in this turn. */
  count(n: number): void {
    this.#bytes += n;
    if (!this.#armed) {
      this.#armed = true;
      setImmediate(this.#reset);
    }
  }

  /** True when this reader has had its share of the current turn. */
  get spent(): boolean {
    return this.#bytes >= TURN_READ_BYTES;
  }

  /** Resumes `stream` now, or on the next turn once this turn's share is spent (then only if `wanted()` still holds). */
  resume(stream: Readable, wanted: () => boolean): void {
    if (!this.spent) stream.resume();
    else setImmediate(() => {
      if (wanted()) stream.resume();
    });
  }
}
