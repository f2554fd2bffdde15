/**
 * The route table and request pipeline (api.md §1–§3, decisions D1, D4, D10, D15, D16).
 *
 * Routes are made with {@link defineRoute}, which requires a {@link Guard} (see guards.ts for
 * why a guard cannot be forged or forgotten) and a body {@link Schema}. {@link createRouter}
 * turns a list of routes into a transport-agnostic handler `(req, res, peer) => Promise<void>`
 * over Node's `IncomingMessage`/`ServerResponse` (HTTP/1.1 or the HTTP/2 compatibility API).
 *
 * Pipeline, in this order:
 * 1. method ≠ POST → 400 `{"err":"api_bad_request"}` (checked before readiness, as SPIKE);
 * 2. readiness: when `isReady()` is false → 503 `state_not_ready`, unless the matched route is
 *    `allowBeforeReady` (unknown routes get 503 too, as SPIKE);
 * 3. dispatch on the exact raw path (no decoding, no normalising: `/v1/store/secrets/`,
 *    `//v1/…` and `%2F` forms are unknown) and the `action` query value (absent or empty =
 *    default; a repeated `action` is refused); unknown → 400 fallback, never another handler;
 * 4. authorisation on the identity alone, before the body is read (every route): the route's
 *    guard's `admits` pre-check (guards.ts) — for identity-only guards the whole check, for
 *    body guards a conservative "could this caller be allowed here with some body" — else
 *    401 `access_unauthorized` without reading, parsing or validating the body. So body
 *    validation (400) is never an oracle for a caller with no business on the route. (SPIKE
 *    decodes first, api.md §2; answering 401 earlier only changes what a refused caller sees.)
 * 5. JSON routes: bounded body read (the route's or the router's `maxBodyBytes`; oversize →
 *    400) → {@link parseJson} → schema → full guard on the validated body (401; runs before
 *    the handler, so before any existence check: D10) → handler → 200 with `goJson(result)`.
 *    Stream variant (cipher): when `Content-Type` is exactly `application/octet-stream` and the
 *    route has a `stream` variant, its guard (identity-only, enforced at definition) was the
 *    whole check in step 4; a declared `Content-Length` over the variant's cap is refused (400)
 *    before anything is read. The handler then either reads the whole body through a
 *    byte-capped reader (`readBody()`), or pulls it chunk by chunk (`body()`: the cap is enforced
 *    on the running count, and the request is only read as fast as the handler consumes it).
 *    It answers with bytes, or with a {@link StreamReply} that the router writes chunk by chunk
 *    with back-pressure, so neither direction needs more than a bounded chunk in memory. An
 *    error before the first reply chunk becomes a normal error answer; after it, the response
 *    is cut off (the connection is destroyed), so a client never takes a truncated reply for
 *    a complete one. Reply chunks are zeroed once flushed (they may be plaintext).
 * Any answer given before the request body fully arrived (oversize, 401, unknown route, …)
 * closes the connection only after a bounded read-and-discard linger (linger.ts), so a client
 * that is still sending receives the answer instead of a reset.
 * JSON response bodies are zeroed once flushed to the socket, and a JSON handler can register
 * `afterSend` callbacks (e.g. to wipe key material it returned) that run after the answer.
 * Errors: a thrown {@link ApiError} becomes its status and the route's zero-valued error shape
 * (api.md §1.3) with `err` = code (plus `message` when exposed: D15); a {@link PlainTextError}
 * becomes a plain-text answer; anything else becomes 500 `api_internal_error` and a log line
 * that names only the error class and code, never input values.
 * Every request writes exactly one log line: caller SPIFFE ID, route, action, decision,
 * status, duration (D16). Bodies, secret paths and query strings are never logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../lib/log.js';
import type { SpiffeId } from '../spiffe/id.js';
import { ApiError, ERR, PlainTextError, REASON, badRequest, internalError, notReady, payloadTooLarge, unauthorized } from './errors.js';
import { type GoJsonValue, goJson } from './gojson.js';
import { type Guard, isGuard } from './guards.js';
import { DEFAULT_JSON_LIMITS, type JsonLimits, parseJson, readBody } from './json.js';
import { type LingerLimits, endResponse, lingerLimits } from './linger.js';
import type { Schema } from './schema.js';
import { type StreamReply, cappedChunks, declaredLength, isStreamReply, writeStreamReply } from './stream-io.js';
import { ERROR_SHAPES, type ErrorShape, OCTET_STREAM } from '../protocol/index.js';

export type { StreamReply } from './stream-io.js';
export { DEFAULT_LINGER, type LingerLimits } from './linger.js';

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

/** What a JSON handler receives. */
export interface HandlerContext<B> {
  /** The caller's verified SPIFFE ID (already authorised by the route's guard). */
  readonly peer: SpiffeId;
  /** The validated body. */
  readonly body: B;
  /** A logger bound to this request (never log values or secret paths). */
  readonly log: Logger;
  /**
   * Registers a callback run once the answer was written (or failed): wipe buffers the
   * result referenced (e.g. recovery shards). Callbacks must not throw.
   */
  afterSend(fn: () => void): void;
}

/** What a stream-mode handler receives. */
export interface StreamContext {
  readonly peer: SpiffeId;
  readonly log: Logger;
  /** The request's `Content-Length` when it sent one (already checked against the cap). */
  readonly declaredLength: number | undefined;
  /** Reads the whole body, at most the variant's `maxBodyBytes` (else 400, connection closed). */
  readBody(): Promise<Buffer>;
  /**
   * The body as chunks, pulled on demand (back-pressure on the client). Past `maxBodyBytes`
   * the iteration throws the 400 `payload_too_large` error. Use either this or `readBody()`,
   * once. Chunks belong to the handler (wipe plaintext after use).
   */
  body(): AsyncIterable<Buffer>;
}

export interface StreamVariant {
  /** Identity-only guard (made by `guardIdentity`; checked at definition) run before the body is read. */
  guard: Guard<unknown>;
  maxBodyBytes: number;
  /** Returns the raw response bytes, or a {@link StreamReply} (sent as `application/octet-stream`). */
  handle(ctx: StreamContext): Promise<Uint8Array | StreamReply> | Uint8Array | StreamReply;
}

export interface RouteDef<B> {
  /** Exact path, e.g. `/v1/store/secrets`. */
  path: string;
  /** `action` query value; '' (default) when omitted. */
  action?: string;
  /** Name for logs; default `path` + `?action=` + action. */
  name?: string;
  body: Schema<B>;
  /** Mandatory: who may call this route. */
  guard: Guard<B>;
  /** Exempt from the readiness gate (SPIKE: recover, restore). */
  allowBeforeReady?: boolean;
  /** Zero-valued error body of this route (api.md §1.3); default `{"err": code}`. */
  errorShape?: ErrorShape;
  /** Per-route body cap (default: the router's). */
  maxBodyBytes?: number;
  /** JSON limits other than bytes (depth, members, elements). */
  jsonLimits?: Partial<Omit<JsonLimits, 'maxBytes'>>;
  handle(ctx: HandlerContext<B>): Promise<GoJsonValue> | GoJsonValue;
  /** Optional `application/octet-stream` mode on the same (path, action). */
  stream?: StreamVariant;
}

const ROUTE = Symbol('route');

/** A registered route (opaque; built by {@link defineRoute}). */
export interface Route {
  readonly [ROUTE]: true;
  readonly path: string;
  readonly action: string;
  readonly name: string;
  readonly guard: Guard<never>;
  readonly streamGuard: Guard<unknown> | undefined;
  readonly allowBeforeReady: boolean;
}

interface RouteImpl extends Route {
  readonly def: RouteDef<unknown>;
}

/** Route table errors at start-up (missing/forged guard, duplicates, bad path). */
export class RouteDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteDefinitionError';
  }
}

/**
 * Defines a route. `guard` is required and must come from guards.ts (type error otherwise;
 * also checked at run time).
 */
export function defineRoute<B>(def: RouteDef<B>): Route {
  if (typeof def.path !== 'string' || !def.path.startsWith('/')) throw new RouteDefinitionError('route path must start with /');
  if (!isGuard(def.guard)) throw new RouteDefinitionError(`route ${def.path} has no valid guard`);
  if (def.stream !== undefined && !isGuard(def.stream.guard)) {
    throw new RouteDefinitionError(`route ${def.path} stream variant has no valid guard`);
  }
  // The stream variant is authorised before any body exists, so only on the identity.
  if (def.stream !== undefined && !def.stream.guard.identityOnly) {
    throw new RouteDefinitionError(`route ${def.path} stream variant needs an identity-only guard`);
  }
  if (def.body === undefined || typeof def.body.parse !== 'function') throw new RouteDefinitionError(`route ${def.path} has no body schema`);
  if (typeof def.handle !== 'function') throw new RouteDefinitionError(`route ${def.path} has no handler`);
  const action = def.action ?? '';
  const r: RouteImpl = {
    [ROUTE]: true,
    path: def.path,
    action,
    name: def.name ?? (action === '' ? def.path : `${def.path}?action=${action}`),
    guard: def.guard as Guard<never>,
    streamGuard: def.stream?.guard,
    allowBeforeReady: def.allowBeforeReady === true,
    def: def as unknown as RouteDef<unknown>,
  };
  return Object.freeze(r);
}

export interface RouterOptions {
  /** Readiness gate (SPIKE: root key present). */
  isReady(): boolean;
  logger: Logger;
  /** Default JSON body cap (D4: 1 MiB). */
  maxBodyBytes?: number;
  /** Bounds of the read-and-discard linger after an early answer (linger.ts; default 4 MiB / 3 s). */
  linger?: Partial<LingerLimits>;
}

export type RouterHandler = ((req: Request, res: Response, peer: SpiffeId | null) => Promise<void>) & {
  /** The registered routes, for listings and the every-route-guarded test. */
  readonly routes: readonly Route[];
};

const JSON_HEADERS: ReadonlyArray<[string, string]> = [
  ['Content-Type', 'application/json'],
  ['Cache-Control', 'no-store, no-cache, must-revalidate, private'],
  ['Pragma', 'no-cache'],
  ['Expires', '0'],
];

type Decision = 'allow' | 'deny' | 'none' | 'error';

/** Most per-caller child loggers kept (see `createRouter`). */
const CALLER_LOG_CACHE = 1024;

/** Splits `req.url` into the raw path and the `action` value(s); never decodes the path. */
function splitTarget(url: string | undefined): { path: string; actions: string[] } {
  const u = url ?? '';
  const q = u.indexOf('?');
  const rawPath = q === -1 ? u : u.slice(0, q);
  const hash = rawPath.indexOf('#');
  const path = hash === -1 ? rawPath : rawPath.slice(0, hash);
  if (q === -1) return { path, actions: [] };
  let query = u.slice(q + 1);
  const h = query.indexOf('#');
  if (h !== -1) query = query.slice(0, h);
  return { path, actions: new URLSearchParams(query).getAll('action') };
}

/** Builds the request handler. Throws {@link RouteDefinitionError} for a bad table. */
export function createRouter(routes: readonly Route[], opts: RouterOptions): RouterHandler {
  const table = new Map<string, Map<string, RouteImpl>>();
  for (const r of routes) {
    const impl = r as RouteImpl;
    if (impl === null || typeof impl !== 'object' || impl[ROUTE] !== true || impl.def === undefined) {
      throw new RouteDefinitionError('not a route made by defineRoute');
    }
    if (!isGuard(impl.def.guard)) throw new RouteDefinitionError(`route ${impl.name} has no valid guard`);
    let byAction = table.get(impl.path);
    if (byAction === undefined) {
      byAction = new Map();
      table.set(impl.path, byAction);
    }
    if (byAction.has(impl.action)) throw new RouteDefinitionError(`duplicate route ${impl.name}`);
    byAction.set(impl.action, impl);
  }
  const maxBody = opts.maxBodyBytes ?? DEFAULT_JSON_LIMITS.maxBytes;
  const linger = lingerLimits(opts.linger);
  const logger = opts.logger;
  // One child logger per caller, reused across requests: pino's child() serialises and
  // redacts its bindings on every call, a cost the hot path need not pay per request. The
  // bound stays small (callers are SPIFFE IDs, not values); past it the cache starts over.
  const callerLogs = new Map<string | null, Logger>();
  const logFor = (caller: string | null): Logger => {
    let l = callerLogs.get(caller);
    if (l === undefined) {
      if (callerLogs.size >= CALLER_LOG_CACHE) callerLogs.clear();
      l = logger.child({ caller });
      callerLogs.set(caller, l);
    }
    return l;
  };

  const handler = async (req: Request, res: Response, peer: SpiffeId | null): Promise<void> => {
    const t0 = performance.now();
    let route: RouteImpl | undefined;
    let decision: Decision = 'none';
    let status = 500;
    let reason: string | undefined;
    const reqLog = logFor(peer === null ? null : peer.toString());
    const afterSend: Array<() => void> = [];

    const finish = (): void => {
      if (!reqLog.isLevelEnabled('info')) return;
      reqLog.info(
        {
          route: route?.path ?? 'unknown',
          action: route?.action ?? null,
          decision,
          status,
          reason,
          durationMs: Math.round((performance.now() - t0) * 1000) / 1000,
        },
        'request',
      );
    };

    const sendJson = (code: number, body: Buffer, close: boolean): void => {
      status = code;
      if (res.headersSent) return;
      res.statusCode = code;
      for (const [k, v] of JSON_HEADERS) res.setHeader(k, v);
      res.setHeader('Content-Length', String(body.length));
      endResponse(req, res, body, close, linger);
    };

    const sendError = (err: ApiError): void => {
      reason = err.reason;
      if (err instanceof PlainTextError) {
        status = err.status;
        if (res.headersSent) return;
        const body = Buffer.from(err.text + '\n', 'utf8');
        res.statusCode = err.status;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.setHeader('X-Content-Type-Options', 'nosniff');
        res.setHeader('Content-Length', String(body.length));
        endResponse(req, res, body, err.closeConnection, linger);
        return;
      }
      const shape: ErrorShape = route?.def.errorShape ?? ERROR_SHAPES.plain;
      const obj: Record<string, GoJsonValue> = { ...shape(err.code) };
      if (err.expose) obj['message'] = err.message;
      sendJson(err.status, goJson(obj), err.closeConnection);
    };

    try {
      // 1. method
      if (req.method !== 'POST') throw badRequest(REASON.badMethod, 'method not allowed');
      // 2/3. route lookup (needed for the readiness exemption), readiness, dispatch
      const { path, actions } = splitTarget(req.url);
      const candidate = actions.length <= 1 ? table.get(path)?.get(actions[0] ?? '') : undefined;
      if (!opts.isReady() && candidate?.allowBeforeReady !== true) throw notReady();
      if (actions.length > 1) throw badRequest(REASON.badRoute, 'repeated action');
      if (candidate === undefined) throw badRequest(REASON.badRoute, 'unknown route');
      route = candidate;
      const def = route.def;

      // 4. authorisation on the identity alone, before a byte of the body is read: a caller
      // that no body could make allowed gets 401, never a validation answer (guards.ts).
      const ctype = req.headers['content-type'];
      const sv = ctype === OCTET_STREAM ? def.stream : undefined;
      if (peer === null || !runGuard(sv?.guard ?? def.guard, peer, undefined, true)) {
        decision = 'deny';
        throw unauthorized();
      }

      // 4a. stream mode: the identity-only guard was the whole check; hand over a capped reader
      if (sv !== undefined) {
        decision = 'allow';
        const declared = declaredLength(req);
        if (declared === null || (declared !== undefined && declared > sv.maxBodyBytes)) {
          req.pause();
          throw payloadTooLarge();
        }
        let bodyBuf: Buffer | undefined;
        let bodyUsed = false;
        const useBody = (): void => {
          if (bodyUsed) throw new ApiError(ERR.internal, 'request body read twice', { reason: 'body_reused' });
          bodyUsed = true;
        };
        try {
          const out = await sv.handle({
            peer,
            log: reqLog,
            declaredLength: declared,
            readBody: async () => {
              useBody();
              bodyBuf = await readBody(req, sv.maxBodyBytes);
              return bodyBuf;
            },
            body: () => {
              useBody();
              return cappedChunks(req, sv.maxBodyBytes);
            },
          });
          if (isStreamReply(out)) {
            await writeStreamReply(req, res, out, (code) => {
              status = code;
            });
          } else {
            const outBuf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
            status = 200;
            if (!res.headersSent) {
              res.statusCode = 200;
              res.setHeader('Content-Type', OCTET_STREAM);
              res.setHeader('Content-Length', String(outBuf.length));
              endResponse(req, res, outBuf, false, linger);
            }
          }
        } finally {
          bodyBuf?.fill(0);
        }
        return;
      }

      // 4b. JSON mode
      const raw = await readBody(req, def.maxBodyBytes ?? maxBody);
      let result: GoJsonValue;
      try {
        const doc = parseJson(raw, { ...def.jsonLimits, maxBytes: def.maxBodyBytes ?? maxBody });
        const body = def.body.parse(doc, '');
        if (!runGuard(def.guard, peer, body, false)) {
          decision = 'deny';
          throw unauthorized();
        }
        decision = 'allow';
        result = await def.handle({ peer, body, log: reqLog, afterSend: (fn) => afterSend.push(fn) });
      } finally {
        raw.fill(0);
      }
      sendJson(200, goJson(result), false);
    } catch (e) {
      if (e instanceof ApiError) {
        sendError(e);
      } else {
        if (decision === 'none') decision = 'error';
        reqLog.error(
          { errName: e instanceof Error ? e.name : typeof e, errCode: (e as { code?: unknown })?.code ?? null, route: route?.path ?? 'unknown' },
          'unhandled error in request handler',
        );
        sendError(internalError());
        reason = 'unhandled';
      }
    } finally {
      for (const fn of afterSend.splice(0)) {
        try {
          fn();
        } catch {
          /* callbacks must not throw; never let one break the answer */
        }
      }
      finish();
    }
  };

  const routesList = Object.freeze([...routes]);
  return Object.assign(handler, { routes: routesList });
}

/**
 * Runs a guard's identity pre-check (`pre`) or its full check on the validated body; a
 * throwing guard counts as an internal error (fails closed).
 */
function runGuard<B>(g: Guard<B>, peer: SpiffeId, body: B, pre: boolean): boolean {
  try {
    return (pre ? g.admits(peer) : g.check(peer, body)) === true;
  } catch (e) {
    throw new ApiError(ERR.internal, 'authorisation failed', { cause: e, reason: 'guard_error' });
  }
}

/** Lists routes (name, guard name) — for docs and the guard-coverage test. */
export function describeRoutes(routes: readonly Route[]): Array<{ name: string; path: string; action: string; guard: string; streamGuard: string | null; allowBeforeReady: boolean }> {
  return routes.map((r) => ({
    name: r.name,
    path: r.path,
    action: r.action,
    guard: r.guard.name,
    streamGuard: r.streamGuard?.name ?? null,
    allowBeforeReady: r.allowBeforeReady,
  }));
}

/**
 * Runs a route's JSON guard on an arbitrary body — for tests that walk the route table and
 * prove every guard denies an unrelated identity. Not used on the request path.
 */
export function probeGuard(route: Route, peer: SpiffeId, body: unknown): boolean {
  return (route.guard as unknown as Guard<unknown>).check(peer, body) === true;
}
