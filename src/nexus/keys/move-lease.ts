/**
 * One sharing move at a time across every process on the store (several workers, several
 * instances): a lease in the store's key records (KeyCustody.takeLease), taken before a move
 * stores its pending sharing and held until it ended. Without it, two moves (a rotation retried
 * through another worker, two scheduled refreshes) could stage at once: each overwrites the
 * other's pending shares on the Keepers, and the one that switches the store could promote the
 * other's shares there.
 *
 * The holder renews the lease every MOVE_LEASE_TTL_MS / 3 while its move runs, so a process
 * that died mid-move blocks the next move for at most MOVE_LEASE_TTL_MS. A move an operator
 * asked for that finds the lease held waits for it only MOVE_LEASE_REQUEST_WAIT_MS (a lease
 * being released right now), then answers `move_in_progress` (409) well inside a client's
 * response-header timeout; a background move (start-up reshare, scheduled refresh) waits up to
 * MOVE_LEASE_BACKGROUND_WAIT_MS, since nobody is waiting for its answer. One
 * process alone on its store (SQLite, one worker) takes no lease: its per-process lock is enough,
 * and a lease left by its own previous incarnation (`kill -9` mid-move) must not delay it.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEY_TIMER_DEFAULTS } from '../../config/index.js';
import { custodyOf, type Store } from '../../store/index.js';

/** System record of the lease. */
export const MOVE_LEASE_RECORD = 'sharing_move_lease';
/** A lease not renewed for this long is free (by default; SPIKE_NEXUS_MOVE_LEASE_TTL). */
export const MOVE_LEASE_TTL_MS = KEY_TIMER_DEFAULTS.moveLeaseTtlMs;
/** How long a requested move waits for a held lease before `move_in_progress` (the default). */
export const MOVE_LEASE_REQUEST_WAIT_MS = 2_000;
/** How long a background move waits for a held lease before `move_in_progress`. */
export const MOVE_LEASE_BACKGROUND_WAIT_MS = 20_000;
const POLL_MS = 250;

/**
 * Takes the lease, waiting for a held one: resolves with its release, or null when another
 * process still held it after the wait (the caller answers `move_in_progress`). A store that no
 * other process writes (`shared` false) or without key custody (memory) needs none: a no-op.
 */
export async function takeMoveLease(store: Store, shared: boolean, opts: { waitMs?: number; ttlMs?: number } = {}): Promise<(() => void) | null> {
  const custody = custodyOf(store);
  if (!custody || !shared) return () => undefined;
  const ttl = opts.ttlMs ?? MOVE_LEASE_TTL_MS;
  const owner = randomBytes(16);
  const until = performance.now() + (opts.waitMs ?? MOVE_LEASE_REQUEST_WAIT_MS);
  while (!(await custody.takeLease(MOVE_LEASE_RECORD, owner, ttl))) {
    if (performance.now() >= until) return null;
    await sleep(POLL_MS);
  }
  const renew = setInterval(() => {
    custody.takeLease(MOVE_LEASE_RECORD, owner, ttl).catch(() => undefined);
  }, Math.max(10, Math.floor(ttl / 3)));
  renew.unref();
  return () => {
    clearInterval(renew);
    custody.releaseLease(MOVE_LEASE_RECORD, owner).catch(() => undefined); // it expires anyway
  };
}
