/**
 * The cipher routes' memory budget: one byte count shared by every in-flight encrypt and
 * decrypt of a Nexus process (`SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES`, default 256 MiB).
 *
 * Why. A stream decrypt must hold its whole ciphertext until the reply is written (one GCM tag
 * at the end: see cipher.ts), and a client that never reads the reply keeps it there. Without a
 * bound, a dozen such connections pinned ~800 MiB. With it, Nexus never holds more than the
 * budget for cipher bodies, whatever the number of callers; the socket inactivity timeout (and
 * any client hang-up) ends such requests and gives their share back.
 *
 * How. A request reserves what it is about to hold *before* holding it, as the bytes arrive
 * ({@link Reservation.grow}): never a declared `Content-Length` up front, so a request that
 * sent only its headers holds nothing (four header-only 64 MiB decrypts used to fill the
 * default budget and lock every caller out). A reservation that does not fit is refused with
 * {@link cipherBusy} (503 — retry later) when it could fit an idle budget, and with the usual
 * 400 "request body too large" when it is bigger than the whole budget (retrying never helps).
 *
 * Per-caller share. Each reservation belongs to a caller (its SPIFFE ID); one caller may hold
 * at most {@link ByteBudget.perCaller} bytes in all, so one identity cannot take the whole
 * budget from the others. Over its share a caller gets the same 503 as over the budget. The
 * routes use {@link callerShare}: a quarter of the budget, but never less than the largest
 * single request (so one maximum-size request still works), and never more than the budget.
 * Every reservation is returned exactly once ({@link Reservation.release} is idempotent); the
 * routes release in `finally` blocks and in the reply iterator's end/return paths
 * ({@link releasingIterable}), so success, error, client abort and a destroyed socket all
 * give the bytes back.
 *
 * The 503 uses SPIKE's `state_not_ready` code (the only 503 code its clients know, as for a
 * busy store: store-errors.ts) with the fixed message {@link CIPHER_BUSY_MESSAGE} and the log
 * reason `cipher_budget_exceeded`.
 */
import { ApiError, ERR, payloadTooLarge } from '../../protocol/index.js';

/** The `message` of the 503 answer (stable; part of the documented API). */
export const CIPHER_BUSY_MESSAGE = 'cipher memory budget exhausted, try again later';
/** The log reason of the 503 answer. */
export const CIPHER_BUSY_REASON = 'cipher_budget_exceeded';

/** 503 `state_not_ready`: the request would fit the budget, but not now. The body is not read. */
export function cipherBusy(): ApiError {
  return new ApiError(ERR.notReady, CIPHER_BUSY_MESSAGE, { reason: CIPHER_BUSY_REASON, expose: true, closeConnection: true });
}

/** Bytes held from a {@link ByteBudget} by one request. */
export interface Reservation {
  /** Bytes held (0 once released). */
  readonly bytes: number;
  readonly released: boolean;
  /** Adds `more` bytes; false (and no change) when they do not fit (budget or share) or this was released. */
  tryGrow(more: number): boolean;
  /**
   * Adds `more` bytes or throws like {@link ByteBudget.reserve} (400 when the total would
   * exceed the whole budget, else 503). The reservation is unchanged on failure.
   */
  grow(more: number): void;
  /** Gives every byte back. Idempotent. */
  release(): void;
}

/**
 * Bytes one caller may hold from a budget of `limit` bytes when the largest single request
 * holds `largestRequest`: a quarter of the budget, at least `largestRequest`, at most `limit`.
 * With the defaults (256 MiB, 64 MiB streams): one 64 MiB stream decrypt (64 MiB + 29 + 64 KiB).
 */
export function callerShare(limit: number, largestRequest: number): number {
  return Math.min(limit, Math.max(Math.floor(limit / 4), largestRequest));
}

interface ByteBudgetOptions {
  /** Most bytes one caller may hold at once (default: the whole budget). */
  perCaller?: number;
}

/** A byte budget shared by concurrent requests, with a per-caller share. */
export class ByteBudget {
  readonly limit: number;
  readonly perCaller: number;
  #used = 0;
  /** Bytes held per caller (entries at 0 are dropped: the map never outgrows the live callers). */
  readonly #byCaller = new Map<string, number>();

  constructor(limit: number, opts: ByteBudgetOptions = {}) {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError('budget limit must be a non-negative integer');
    const perCaller = opts.perCaller ?? limit;
    if (!Number.isSafeInteger(perCaller) || perCaller < 0) throw new RangeError('per-caller share must be a non-negative integer');
    this.limit = limit;
    this.perCaller = Math.min(perCaller, limit);
  }

  /** Bytes reserved right now. */
  get used(): number {
    return this.#used;
  }

  /** Bytes still free. */
  get available(): number {
    return this.limit - this.#used;
  }

  /** Bytes `caller` holds right now. */
  usedBy(caller: string): number {
    return this.#byCaller.get(caller) ?? 0;
  }

  #fits(caller: string, more: number): boolean {
    return more <= this.available && this.usedBy(caller) + more <= this.perCaller;
  }

  #add(caller: string, delta: number): void {
    this.#used += delta;
    const now = this.usedBy(caller) + delta;
    if (now === 0) this.#byCaller.delete(caller);
    else this.#byCaller.set(caller, now);
  }

  /**
   * Reserves `bytes` now for `caller` (its SPIFFE ID; '' for none), or returns undefined (and
   * reserves nothing) when they do not fit the free budget or the caller's share.
   */
  tryReserve(bytes: number, caller = ''): Reservation | undefined {
    checkBytes(bytes);
    if (!this.#fits(caller, bytes)) return undefined;
    this.#add(caller, bytes);
    let held = bytes;
    let released = false;
    const tryGrow = (more: number): boolean => {
      checkBytes(more);
      if (released || !this.#fits(caller, more)) return false;
      this.#add(caller, more);
      held += more;
      return true;
    };
    return {
      get bytes() {
        return released ? 0 : held;
      },
      get released() {
        return released;
      },
      tryGrow,
      grow: (more: number): void => {
        if (released) throw new Error('cipher budget: grow after release');
        if (tryGrow(more)) return;
        throw held + more > this.limit ? payloadTooLarge() : cipherBusy();
      },
      release: (): void => {
        if (released) return;
        released = true;
        this.#add(caller, -held);
      },
    };
  }

  /**
   * Reserves `bytes` for `caller` or throws: 400 "request body too large" when they exceed the
   * whole budget, 503 {@link cipherBusy} when they do not fit now (budget or caller's share).
   */
  reserve(bytes: number, caller = ''): Reservation {
    const r = this.tryReserve(bytes, caller);
    if (r !== undefined) return r;
    throw bytes > this.limit ? payloadTooLarge() : cipherBusy();
  }
}

function checkBytes(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('byte count must be a non-negative integer');
}

/**
 * Wraps an async iterator so that `release` runs exactly once when iteration ends in any way:
 * exhausted, thrown, or stopped by the consumer (`return()`, which `for await` calls on
 * `break`/throw) — even when the consumer stops before the first `next()`, where a generator's
 * own `finally` would never run.
 */
export function releasingIterable<T>(source: AsyncIterator<T>, release: () => void): AsyncIterable<T> {
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    release();
  };
  const it: AsyncIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      if (done) return { done: true, value: undefined };
      try {
        const r = await source.next();
        if (r.done === true) finish();
        return r;
      } catch (e) {
        finish();
        throw e;
      }
    },
    async return(): Promise<IteratorResult<T>> {
      try {
        await source.return?.();
      } finally {
        finish();
      }
      return { done: true, value: undefined };
    },
  };
  return { [Symbol.asyncIterator]: () => it };
}
