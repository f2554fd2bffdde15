/**
 * One request in flight: the record the router and both pipelines share (request, response,
 * what was decided, the status sent), and the one log line each request writes from it:
 * caller, route, action, decision, status, reason, duration. Bodies, paths inside bodies and
 * query strings are never logged.
 *
 * Also the per-caller child loggers: pino's `child()` serialises and redacts its bindings on
 * every call, a cost the hot path need not pay per request, so one child per caller is kept
 * and reused. The bound stays small (callers are identities, not values); past it the cache
 * starts over.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../lib/index.js';
import type { Request, Response } from './connection.js';
import type { LingerLimits } from './linger.js';
import type { ErrorShape, ReplyTarget } from './reply.js';

/** What authorisation concluded: `none` until a guard ran, `error` for an unexpected failure. */
type Decision = 'allow' | 'deny' | 'none' | 'error';

export interface Exchange extends ReplyTarget {
  /** The logger bound to this caller. */
  readonly log: Logger;
  readonly startedAt: number;
  /**
   * Runs after the decision "allow" and before the handler (the audit intent entry); a
   * rejection answers instead of the handler, so nothing changes.
   */
  beforeHandle: ((body: unknown) => Promise<void>) | undefined;
  /** The validated JSON body once parsed (for the audit hook; never logged). */
  body: unknown;
  /** The matched route's path and action, for the log line (unset: `unknown`); `poll`: RouteDef.poll. */
  route: { readonly path: string; readonly action: string; readonly poll?: boolean } | undefined;
  decision: Decision;
  /** Callbacks run once the answer was written (or failed). */
  readonly afterSend: Array<() => void>;
}

/**
 * Request IDs are drawn from a 4 KiB pool of random bytes refilled when used up: one call
 * into the system's random generator per 512 requests instead of one per request (a
 * measurable share of a warm GET's CPU). The IDs only correlate log and audit lines; they
 * are not secrets and grant nothing.
 */
const ID_BYTES = 8;
const idPool = Buffer.alloc(4096);
let idOffset = idPool.length;

function nextRequestId(): string {
  if (idOffset + ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const id = idPool.toString('hex', idOffset, idOffset + ID_BYTES);
  idOffset += ID_BYTES;
  return id;
}

export function newExchange(req: Request, res: Response, linger: LingerLimits, log: Logger, errorShape: ErrorShape): Exchange {
  return {
    req,
    res,
    linger,
    log,
    startedAt: performance.now(),
    requestId: nextRequestId(),
    beforeHandle: undefined,
    body: undefined,
    route: undefined,
    errorShape,
    decision: 'none',
    status: 500,
    reason: undefined,
    afterSend: [],
  };
}

/** Runs the `afterSend` callbacks (they must not throw; one that does never breaks the answer). */
export function runAfterSend(x: Exchange): void {
  for (const fn of x.afterSend.splice(0)) {
    try {
      fn();
    } catch {
      /* callbacks must not throw */
    }
  }
}

/** Writes the request's one log line (at debug for a status poll answered below 400). */
export function logExchange(x: Exchange): void {
  const level = x.route?.poll === true && x.status < 400 ? 'debug' : 'info';
  if (!x.log.isLevelEnabled(level)) return;
  x.log[level](
    {
      requestId: x.requestId,
      route: x.route?.path ?? 'unknown',
      action: x.route?.action ?? null,
      decision: x.decision,
      status: x.status,
      reason: x.reason,
      durationMs: Math.round((performance.now() - x.startedAt) * 1000) / 1000,
    },
    'request',
  );
}

/** Most per-caller child loggers kept. */
const CALLER_LOG_CACHE = 1024;

/** A function giving the child logger of a caller (`null`: no verified caller). */
export function callerLoggers(logger: Logger): (caller: string | null) => Logger {
  const cache = new Map<string | null, Logger>();
  return (caller) => {
    let child = cache.get(caller);
    if (child === undefined) {
      if (cache.size >= CALLER_LOG_CACHE) cache.clear();
      child = logger.child({ caller });
      cache.set(caller, child);
    }
    return child;
  };
}
