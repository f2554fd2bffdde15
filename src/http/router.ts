/**
 * The router: a route table and the dispatch in front of the two pipelines.
 *
 * {@link createRouter} turns a list of routes (route.ts) into a transport-agnostic handler
 * `(req, res, peer) => Promise<void>` over Node's `IncomingMessage`/`ServerResponse`
 * (HTTP/1.1 or the HTTP/2 compatibility API); `peer` is the verified caller identity, or
 * `null` when there is none. In this order:
 * 1. method ≠ POST → 400 (checked before readiness);
 * 2. readiness: when `isReady()` is false → 503, unless the matched route is
 *    `allowBeforeReady` (unknown routes get 503 too);
 * 3. dispatch on the exact raw path (no decoding, no normalising: `/a/b/`, `//a/b` and `%2F`
 *    forms are unknown) and the `action` query value (absent or empty = default; a repeated
 *    `action` is refused); unknown → 400, never another handler;
 * 4. authorisation on the identity alone, before the body is read (every route): the route's
 *    guard's `admits` pre-check (guards.ts) — for identity-only guards the whole check, for
 *    body guards a conservative "could this caller be allowed here with some body" — else
 *    401 without reading, parsing or validating the body, so body validation (400) is never
 *    an oracle for a caller with no business on the route;
 * 5. the stream pipeline (pipeline-stream.ts) when `Content-Type` is exactly
 *    `application/octet-stream` and the route has a stream variant, else the JSON pipeline
 *    (pipeline-json.ts); a JSON body not all there within the body deadline is a 408, and so is
 *    a stream body arriving below the stream body pace (body-pace.ts).
 * Any answer given before the request body fully arrived closes the connection only after a
 * bounded read-and-discard linger (linger.ts). Errors: a thrown {@link ApiError} becomes its
 * status and the route's error shape with `err` = code (plus `message` when exposed); a
 * {@link PlainTextError} becomes a plain-text answer; anything else becomes a 500 and a log
 * line that names only the error class and code, never input values (reply.ts). Every
 * request writes exactly one log line (exchange.ts) and gets a random request ID, returned in
 * the `X-Request-Id` answer header and written to that line. With an audit hook
 * ({@link RequestAuditor}), an allowed request's handler runs only once its intent entry is
 * durable (else 503 "audit log unavailable", nothing run), and every request ends with a
 * result entry.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../lib/index.js';
import type { SpiffeId } from '../spiffe/index.js';
import type { Request, Response } from './connection.js';
import { ApiError, REASON, assertErrorCodesChosen, badRequest, errorCode, internalError, notReady, unauthorized } from './errors.js';
import { type Exchange, callerLoggers, logExchange, newExchange, runAfterSend } from './exchange.js';
import { runGuard } from './guards.js';
import { type BodyPace, DEFAULT_STREAM_BODY_PACE, checkBodyPace } from './body-pace.js';
import { DEFAULT_JSON_LIMITS } from './json.js';
import { type LingerLimits, lingerLimits } from './linger.js';
import { afterTurn, runJsonRoute } from './pipeline-json.js';
import { runStreamRoute } from './pipeline-stream.js';
import { OCTET_STREAM, defaultErrorShape, sendError } from './reply.js';
import { type Route, type RouteDef, RouteDefinitionError, definitionOf } from './route.js';

/**
 * Reports each request for metrics: `started` when it arrives, `finished` once answered,
 * with the matched route's table path and action (`unknown` / '' when none matched), the
 * authorisation decision, the status and the duration. Never a body, a query or a caller.
 */
export interface RequestObserver {
  started(): void;
  finished(e: { route: string; action: string; decision: string; status: number; seconds: number }): void;
}

/** What the audit trail learns of a request (src/audit via the application's wiring). */
export interface AuditRecord<P> {
  requestId: string;
  peer: P | null;
  route: string;
  action: string;
  decision: string;
}

/**
 * The audit hook: `intent` runs for an allowed request after its guard and before its
 * handler, and must resolve only once the entry is durable — a rejection answers 503
 * "audit log unavailable" instead of running the handler (a rejection that is an
 * {@link ApiError} is answered as it is, e.g. to name the cause); `result` records every answered
 * request (never throws, never waits).
 */
export interface RequestAuditor<P = SpiffeId> {
  intent(e: AuditRecord<P>, body: unknown): Promise<void>;
  result(e: AuditRecord<P> & { status: number; durationMs: number; body: unknown }): void;
}

interface RouterOptions<P = SpiffeId> {
  /** Readiness gate (e.g. "the data key is loaded"). */
  isReady(): boolean;
  /** The error a gated request gets while not ready, when a specific one applies (default: the generic not-ready). */
  notReadyError?: () => ApiError | undefined;
  logger: Logger;
  /** Default JSON body cap (default 1 MiB, the JSON parser's). */
  maxBodyBytes?: number;
  /**
   * A JSON body must have fully arrived this long after its read began, else 408 and the
   * connection is closed (default {@link DEFAULT_BODY_TIMEOUT_MS}; SEC-02).
   */
  bodyTimeoutMs?: number;
  /**
   * A stream body must keep arriving at this pace while it is waited for, else 408 and the
   * connection is closed (default {@link DEFAULT_STREAM_BODY_PACE}; FI-08).
   */
  streamBodyPace?: BodyPace;
  /** Bounds of the read-and-discard linger after an early answer (linger.ts; default 4 MiB / 3 s). */
  linger?: Partial<LingerLimits>;
  /** Metrics hook (src/ops); must not throw. */
  observer?: RequestObserver;
  /** Audit hook (fail closed: see {@link RequestAuditor}). */
  auditor?: RequestAuditor<P>;
  /**
   * Asked before a route's identity pre-check (no body) and before a JSON route's full guard
   * check on its validated body; a promise puts the decision off until it settles (Nexus
   * spreads costly policy-pattern work over turns of the event loop). Must not throw or reject.
   */
  beforeDecision?: (peer: P, body?: unknown) => Promise<void> | undefined;
}

/**
 * Default JSON body deadline: a 1 MiB body (the default cap) needs about 100 KiB/s to make it;
 * a body trickled byte by byte is answered 408 within this bound instead of holding a request
 * until the server's request timeout drops the connection unanswered.
 */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

export type RouterHandler<P = SpiffeId> = ((req: Request, res: Response, peer: P | null) => Promise<void>) & {
  /** The registered routes, for listings and route-table tests. */
  readonly routes: ReadonlyArray<Route<P>>;
};

interface TableEntry<P> {
  readonly route: Route<P>;
  readonly def: RouteDef<unknown, P>;
}

/**
 * Splits `req.url` into the raw path and the `action` value(s); never decodes the path. A
 * request target never holds a fragment (RFC 9112 origin-form): one with `#` is no route,
 * rather than read one way here (`/p#x?action=get` as the get) and another by a proxy or
 * Go's server (the default action, or no route).
 */
function splitTarget(url: string | undefined): { path: string; actions: string[] } {
  const target = url ?? '';
  if (target.includes('#')) return { path: '', actions: [] };
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  if (queryAt === -1) return { path, actions: [] };
  return { path, actions: new URLSearchParams(target.slice(queryAt + 1)).getAll('action') };
}

/** Builds the (path → action → route) table. Throws for a forged route or a duplicate. */
function buildTable<P>(routes: ReadonlyArray<Route<P>>): Map<string, Map<string, TableEntry<P>>> {
  const table = new Map<string, Map<string, TableEntry<P>>>();
  for (const route of routes) {
    const def = definitionOf(route);
    let byAction = table.get(route.path);
    if (byAction === undefined) {
      byAction = new Map();
      table.set(route.path, byAction);
    }
    if (byAction.has(route.action)) throw new RouteDefinitionError(`duplicate route ${route.name}`);
    byAction.set(route.action, { route, def });
  }
  return table;
}

/** Answers an error thrown anywhere in the pipeline (unexpected ones become a logged 500). */
function answerFailure(x: Exchange, e: unknown): void {
  if (e instanceof ApiError) {
    sendError(x, e);
    return;
  }
  if (x.decision === 'none') x.decision = 'error';
  x.log.error(
    { errName: e instanceof Error ? e.name : typeof e, errCode: (e as { code?: unknown })?.code ?? null, route: x.route?.path ?? 'unknown' },
    'unhandled error in request handler',
  );
  sendError(x, internalError());
  x.reason = 'unhandled';
}

/** Builds the request handler. Throws {@link RouteDefinitionError} for a bad table. */
export function createRouter<P = SpiffeId>(routes: ReadonlyArray<Route<P>>, opts: RouterOptions<P>): RouterHandler<P> {
  assertErrorCodesChosen();
  const table = buildTable(routes);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_JSON_LIMITS.maxBytes;
  const linger = lingerLimits(opts.linger);
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  if (!Number.isSafeInteger(bodyTimeoutMs) || bodyTimeoutMs < 1) throw new RangeError('bodyTimeoutMs must be a positive integer');
  const streamPace = checkBodyPace(opts.streamBodyPace ?? DEFAULT_STREAM_BODY_PACE);
  const logFor = callerLoggers(opts.logger);

  const handler = async (req: Request, res: Response, peer: P | null): Promise<void> => {
    const x = newExchange(req, res, linger, logFor(peer === null ? null : String(peer)), defaultErrorShape);
    opts.observer?.started();
    const auditor = opts.auditor;
    const record = (): AuditRecord<P> => ({
      requestId: x.requestId, peer, route: x.route?.path ?? 'unknown', action: x.route?.action ?? '', decision: x.decision,
    });
    if (auditor !== undefined) {
      x.beforeHandle = async (body) => {
        try {
          await auditor.intent(record(), body);
        } catch (e) {
          x.decision = 'error';
          // The hook may name the cause itself (an exposed ApiError); else the generic refusal.
          if (e instanceof ApiError) throw e;
          throw new ApiError(errorCode('notReady'), 'audit log unavailable', { expose: true, reason: 'audit_unavailable', cause: e });
        }
      };
    }
    try {
      // 1. method
      if (req.method !== 'POST') throw badRequest(REASON.badMethod, 'method not allowed');
      // 2/3. route lookup (needed for the readiness exemption), readiness, dispatch
      const { path, actions } = splitTarget(req.url);
      const entry = actions.length <= 1 ? table.get(path)?.get(actions[0] ?? '') : undefined;
      if (!opts.isReady() && entry?.route.allowBeforeReady !== true) throw opts.notReadyError?.() ?? notReady();
      if (actions.length > 1) throw badRequest(REASON.badRoute, 'repeated action');
      if (entry === undefined) throw badRequest(REASON.badRoute, 'unknown route');
      const { route, def } = entry;
      x.route = route;
      x.errorShape = def.errorShape ?? defaultErrorShape;

      // 4. authorisation on the identity alone, before a byte of the body is read: a caller
      // that no body could make allowed gets 401, never a validation answer (guards.ts).
      const variant = req.headers['content-type'] === OCTET_STREAM ? def.stream : undefined;
      const turn = peer === null ? undefined : opts.beforeDecision?.(peer); // may decide on costly patterns
      if (turn !== undefined) await afterTurn(x, turn);
      if (peer === null || !runGuard(variant?.guard ?? def.guard, peer, undefined, true)) {
        x.decision = 'deny';
        throw unauthorized();
      }
      // 5. the pipeline
      if (variant !== undefined) await runStreamRoute(x, variant, peer, streamPace);
      else await runJsonRoute(x, def, peer, maxBody, bodyTimeoutMs, opts.beforeDecision);
    } catch (e) {
      answerFailure(x, e);
    } finally {
      runAfterSend(x);
      logExchange(x);
      auditor?.result({ ...record(), status: x.status, durationMs: Math.round((performance.now() - x.startedAt) * 1000) / 1000, body: x.body });
      opts.observer?.finished({
        route: x.route?.path ?? 'unknown', action: x.route?.action ?? '', decision: x.decision, status: x.status,
        seconds: (performance.now() - x.startedAt) / 1000,
      });
    }
  };

  return Object.assign(handler, { routes: Object.freeze([...routes]) });
}
