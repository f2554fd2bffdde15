/**
 * What the watching source (x509-source.ts) needs to tell news from silence: a fingerprint of
 * an X.509 context (did a response change anything?) and how long a stream may stay silent
 * before it is ended and retried (module doc of x509-source.ts).
 */
import { createHash } from 'node:crypto';
import type { X509Context } from './response.js';

/** Shortest wait for a rotated SVID before the stream counts as silent (an expiring SVID). */
const MIN_ROTATION_WAIT_MS = 5_000;
/** Longest wait for news after silent streams that brought nothing new. */
const MAX_STALL_WAIT_MS = 300_000;
/** Longest delay a Node timer takes (a longer one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A digest of the SVIDs (IDs and certificates) and bundles of `ctx`: equal when nothing changed. */
export function fingerprint(ctx: X509Context): string {
  const h = createHash('sha256');
  for (const s of ctx.svids) {
    h.update(s.id.toString()).update('\0');
    for (const c of s.certificates) h.update(c.raw);
    h.update('\0');
  }
  for (const b of ctx.bundles.bundles()) {
    h.update(b.trustDomain.name).update('\0').update(b.toDer()).update('\0');
  }
  return h.digest('hex');
}

/**
 * How long the stream may stay silent after a response: three quarters of the current SVID's
 * remaining lifetime (`leftMs`), but at least a floor that doubles with each silent stream in a
 * row that brought nothing new (`streak`), up to 5 minutes.
 */
export function silenceWaitMs(leftMs: number, streak: number, stallTimeoutMs: number): number {
  const floor = Math.min(MAX_STALL_WAIT_MS, Math.min(MIN_ROTATION_WAIT_MS, stallTimeoutMs) * 2 ** streak);
  return Math.max(floor, Math.floor(leftMs * 0.75));
}
