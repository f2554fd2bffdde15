/**
 * Route definitions: what a route is made of, and {@link defineRoute}, the only way to make
 * one.
 *
 * A route needs a {@link Guard} (see guards.ts for why a guard cannot be forged or forgotten:
 * leaving `guard` out is a type error, a forged one is refused here at start-up) and a body
 * {@link Schema}. It may add a stream variant, selected by `Content-Type:
 * application/octet-stream`, whose guard must be identity-only because it is authorised
 * before any body exists. `P` is the type of the verified peer identity (a SPIFFE ID unless
 * the application says otherwise).
 */
import type { SpiffeId } from '../spiffe/index.js';
import type { Logger } from '../lib/index.js';
import type { GoJsonValue } from './gojson.js';
import { type Guard, isGuard } from './guards.js';
import type { JsonLimits } from './json.js';
import type { ErrorShape, StreamReply } from './reply.js';
import type { Schema } from './schema.js';

/** What a JSON handler receives. */
export interface HandlerContext<B, P = SpiffeId> {
  /** The caller's verified identity (already authorised by the route's guard). */
  readonly peer: P;
  /** The validated body. */
  readonly body: B;
  /** A logger bound to this request (never log values or paths from the body). */
  readonly log: Logger;
  /**
   * Registers a callback run once the answer was written (or failed): wipe buffers the
   * result referenced (e.g. key shares). Callbacks must not throw.
   */
  afterSend(fn: () => void): void;
}

/** What a stream-mode handler receives. */
export interface StreamContext<P = SpiffeId> {
  readonly peer: P;
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

export interface StreamVariant<P = SpiffeId> {
  /** Identity-only guard (made by `guardIdentity`; checked at definition) run before the body is read. */
  guard: Guard<unknown, P>;
  maxBodyBytes: number;
  /**
   * Bytes of the body `body()` may read ahead of the handler (default 0: one chunk at a time;
   * body.ts `readAheadBytes`). Memory the handler accounts for (e.g. in a budget).
   */
  readAheadBytes?: number;
  /** Returns the raw response bytes, or a {@link StreamReply} (sent as `application/octet-stream`). */
  handle(ctx: StreamContext<P>): Promise<Uint8Array | StreamReply> | Uint8Array | StreamReply;
}

export interface RouteDef<B, P = SpiffeId> {
  /** Exact path, e.g. `/v1/items`. */
  path: string;
  /** `action` query value; '' (default) when omitted. */
  action?: string;
  /** Name for logs; default `path` + `?action=` + action. */
  name?: string;
  body: Schema<B>;
  /** Mandatory: who may call this route. */
  guard: Guard<B, P>;
  /** Exempt from the readiness gate. */
  allowBeforeReady?: boolean;
  /** Error body of this route; default `{"err": code}`. */
  errorShape?: ErrorShape;
  /** Per-route body cap (default: the router's). */
  maxBodyBytes?: number;
  /** JSON limits other than bytes (depth, members, elements). */
  jsonLimits?: Partial<Omit<JsonLimits, 'maxBytes'>>;
  handle(ctx: HandlerContext<B, P>): Promise<GoJsonValue> | GoJsonValue;
  /**
   * The handler answers only when a long operation is done (a sharing move: every Keeper
   * acknowledged, with retries): while it runs, the server's socket inactivity timeout, which
   * would close the silent connection mid-request, is lifted for this connection (restored
   * before the answer is written). The client's own deadline bounds the wait.
   */
  answersWhenDone?: boolean;
  /** Optional `application/octet-stream` mode on the same (path, action). */
  stream?: StreamVariant<P>;
  /**
   * A status poll another component sends every few seconds (the Keeper's status route): its
   * request line is logged at debug when answered below 400, so a healthy poll does not fill
   * the log with a line every few seconds; a refusal or a failure is logged at info as always.
   */
  poll?: boolean;
}

const ROUTE = Symbol('route');

/** A registered route (opaque; built by {@link defineRoute}). */
export interface Route<P = SpiffeId> {
  readonly [ROUTE]: true;
  readonly path: string;
  readonly action: string;
  readonly name: string;
  readonly guard: Guard<never, P>;
  readonly streamGuard: Guard<unknown, P> | undefined;
  readonly allowBeforeReady: boolean;
  /** {@link RouteDef.poll}. */
  readonly poll: boolean;
}

interface RouteImpl<P> extends Route<P> {
  readonly def: RouteDef<unknown, P>;
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
export function defineRoute<B, P = SpiffeId>(def: RouteDef<B, P>): Route<P> {
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
  const r: RouteImpl<P> = {
    [ROUTE]: true,
    path: def.path,
    action,
    name: def.name ?? (action === '' ? def.path : `${def.path}?action=${action}`),
    guard: def.guard as Guard<never, P>,
    streamGuard: def.stream?.guard,
    allowBeforeReady: def.allowBeforeReady === true,
    poll: def.poll === true,
    def: def as unknown as RouteDef<unknown, P>,
  };
  return Object.freeze(r);
}

/**
 * The definition behind a route made by {@link defineRoute} (for the router; not part of the
 * toolkit's public surface). Throws {@link RouteDefinitionError} for anything else.
 */
export function definitionOf<P>(route: Route<P>): RouteDef<unknown, P> {
  const impl = route as RouteImpl<P>;
  if (impl === null || typeof impl !== 'object' || impl[ROUTE] !== true || impl.def === undefined) {
    throw new RouteDefinitionError('not a route made by defineRoute');
  }
  if (!isGuard(impl.def.guard)) throw new RouteDefinitionError(`route ${impl.name} has no valid guard`);
  return impl.def;
}
