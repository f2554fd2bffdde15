/**
 * Capped exponential backoff, written once for every retry loop in the project (Workload
 * API reconnects, Keeper recovery passes, Bootstrap's waits, policy reloads, Nexus opening
 * a PostgreSQL store that is down). `jitter` spreads a fleet of processes that failed together so they do not
 * retry in lock-step against a recovering dependency.
 */
import { randomInt } from 'node:crypto';

type Jitter =
  /** Exactly min(max, initial·2^attempt). */
  | 'none'
  /** A delay in [d/2, d] ("equal jitter"). */
  | 'equal';

interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  jitter?: Jitter;
}

/** The delay before retry number `attempt` (0-based): d = min(max, initial·2^attempt), jittered. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const d = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  if ((opts.jitter ?? 'none') === 'none') return d;
  const half = Math.floor(d / 2);
  return half + randomInt(0, d - half + 1);
}

/** A retry counter: `next()` returns the next delay, `reset()` starts over after a success. */
export class Backoff {
  #attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  next(): number {
    return backoffDelay(this.#attempt++, this.opts);
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempt(): number {
    return this.#attempt;
  }
}
