/**
 * The JSON pipeline of a route, after the router has matched it and the caller passed the
 * guard's identity pre-check: a declared charset other than UTF-8 → 415 (media-type.ts) →
 * bounded body read (the route's or the router's cap; oversize →
 * 400; not all there within the body deadline → 408) → strict parse → schema → the
 * application's pacing of costly decisions (`beforeDecision`) → the guard's full check on the validated body (401; it runs
 * before the handler, so before any existence check) → handler → 200 with the Go-encoded
 * result. The raw body is zeroed once parsed (key material in it never became a string or a
 * number array: `parseBody`), and the encoded answer once flushed. A route that
 * answers only when a long operation is done (`answersWhenDone`) runs its handler with the
 * connection's inactivity timeout lifted.
 */
import { readBody } from './body.js';
import { readFailed, unauthorized, unsupportedMediaType } from './errors.js';
import type { Exchange } from './exchange.js';
import { type GoJsonValue, goJson } from './gojson.js';
import { runGuard } from './guards.js';
import { parseBody, zeroBodyBytes } from './schema.js';
import { unsupportedCharset } from './media-type.js';
import { sendJson } from './reply.js';
import type { RouteDef } from './route.js';

export async function runJsonRoute<P>(
  x: Exchange, def: RouteDef<unknown, P>, peer: P, routerMaxBody: number, bodyTimeoutMs: number, beforeDecision?: (peer: P, body?: unknown) => Promise<void> | undefined,
): Promise<void> {
  const maxBytes = def.maxBodyBytes ?? routerMaxBody;
  if (unsupportedCharset(x.req.headers['content-type'])) throw unsupportedMediaType();
  const raw = await readBody(x.req, maxBytes, { timeoutMs: bodyTimeoutMs });
  let result: GoJsonValue;
  let body: unknown;
  let handed = false;
  try {
    body = parseBody(def.body, raw, { ...def.jsonLimits, maxBytes });
    x.body = body;
    const turn = beforeDecision?.(peer, body);
    if (turn !== undefined) await afterTurn(x, turn);
    if (!runGuard(def.guard, peer, body, false)) {
      x.decision = 'deny';
      throw unauthorized();
    }
    x.decision = 'allow';
    if (x.beforeHandle !== undefined) await x.beforeHandle(body);
    handed = true; // from here the handler owns the body's buffers (it may keep a share)
    result = await withoutInactivityTimeout(x, def.answersWhenDone === true, () => def.handle({ peer, body, log: x.log, afterSend: (fn) => x.afterSend.push(fn) }));
  } catch (e) {
    // Refused before the handler ran (guard, audit hook): the decoded bytes (a share, a
    // plaintext) go nowhere, so they are zeroed here.
    if (!handed) zeroBodyBytes(body);
    throw e;
  } finally {
    raw.fill(0);
  }
  sendJson(x, 200, goJson(result), false);
}

/** Waits for a decision's turn; a client that left meanwhile gets no decision (nor anything after it). */
export async function afterTurn(x: Exchange, turn: Promise<void>): Promise<void> {
  await turn;
  if (x.req.socket?.destroyed !== false) throw readFailed();
}

/** Runs `fn` with the socket's inactivity timeout off when `lift` (restored afterwards, if the socket is still open). */
async function withoutInactivityTimeout<T>(x: Exchange, lift: boolean, fn: () => Promise<T> | T): Promise<T> {
  const socket = x.req.socket as { timeout?: number; destroyed: boolean; setTimeout(ms: number): unknown } | null;
  const idleMs = lift ? socket?.timeout : undefined;
  if (socket === null || idleMs === undefined || idleMs <= 0) return fn();
  socket.setTimeout(0);
  try {
    return await fn();
  } finally {
    if (!socket.destroyed) socket.setTimeout(idleMs);
  }
}
