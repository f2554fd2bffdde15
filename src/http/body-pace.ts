/**
 * The minimum pace of a stream body (FI-08): a body the server is waiting for must keep
 * arriving at `minBytesPerSecond` or better, averaged over `windowMs` of waiting.
 *
 * A stream body may legitimately be long (up to its cap), so it has no whole-body deadline
 * like a JSON body; what it may not do is trickle. Only time the reader spends waiting for
 * bytes counts: while the consumer is busy or paused (a stream encrypt held back by a client
 * that reads its reply slowly), the body is not read and the sender is not to blame. Every
 * `windowMs` (wall clock) the waiting time since the last judgement is looked at; once it
 * reaches half a window, the bytes that arrived meanwhile must be at least
 * `minBytesPerSecond` × that time, else the read fails (408 `body_too_slow`, cappedChunks in
 * body.ts). Less waiting than half a window carries over to the next look, so a short wait
 * is never judged on its own. A client that sends nothing at all is answered one window after
 * the read began; one that sends just too little within two windows at most.
 */
import { performance } from 'node:perf_hooks';

export interface BodyPace {
  /** How often the pace is judged, and the waiting time it is averaged over (ms). */
  readonly windowMs: number;
  /** The slowest acceptable average arrival rate while the reader waits (bytes per second). */
  readonly minBytesPerSecond: number;
}

/**
 * Default pace of a stream body: 16 KiB/s over 10 s windows. The listener's request timeout
 * (60 s) already asks more of a large body (the 64 MiB stream cap needs about 1.1 MiB/s to
 * make it), so only a body that could never carry much is cut: below 16 KiB/s a request
 * carries under 1 MiB before that timeout drops it unanswered. A trickle is answered 408
 * after 10 s (the JSON body deadline) instead of holding its connection, request slot and
 * cipher budget reservation for 60 s, and keeping a stream open costs a sender at least
 * 16 KiB/s per connection.
 */
export const DEFAULT_STREAM_BODY_PACE: BodyPace = Object.freeze({ windowMs: 10_000, minBytesPerSecond: 16 * 1024 });

/** Throws a RangeError for an unusable pace (at router construction). */
export function checkBodyPace(p: BodyPace): BodyPace {
  if (!Number.isSafeInteger(p.windowMs) || p.windowMs < 1) throw new RangeError('body pace windowMs must be a positive integer');
  if (!Number.isFinite(p.minBytesPerSecond) || p.minBytesPerSecond < 0) throw new RangeError('body pace minBytesPerSecond must be a non-negative number');
  return p;
}

/** Watches one body read; calls `tooSlow` (once) when the pace fails. {@link stop} when the read ends. */
export class PaceWatch {
  readonly #pace: BodyPace;
  readonly #tooSlow: () => void;
  readonly #timer: NodeJS.Timeout;
  /** Waiting time (ms) and bytes since the last judgement. */
  #waitedMs = 0;
  #bytes = 0;
  /** When the current wait began (the reader asked for bytes and has none yet). */
  #waitingSince: number | undefined;

  constructor(pace: BodyPace, tooSlow: () => void) {
    this.#pace = pace;
    this.#tooSlow = tooSlow;
    this.#timer = setInterval(() => this.#judge(), pace.windowMs);
  }

  /** The reader is waiting for bytes. */
  waiting(): void {
    this.#waitingSince ??= performance.now();
  }

  /** `n` bytes arrived (ends the current wait). */
  arrived(n: number): void {
    this.#foldWait(performance.now());
    this.#waitingSince = undefined;
    this.#bytes += n;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #foldWait(now: number): void {
    if (this.#waitingSince === undefined) return;
    this.#waitedMs += now - this.#waitingSince;
    this.#waitingSince = now;
  }

  #judge(): void {
    this.#foldWait(performance.now());
    const waited = this.#waitedMs;
    if (waited < this.#pace.windowMs / 2) return;
    if (this.#bytes < (this.#pace.minBytesPerSecond * waited) / 1000) {
      this.stop();
      this.#tooSlow();
      return;
    }
    this.#waitedMs = 0;
    this.#bytes = 0;
  }
}
