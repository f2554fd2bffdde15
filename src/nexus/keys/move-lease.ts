/**
 * One sharing move at a time across every process on the store (several workers, several
 * instances): a lease in the store's key records (KeyCustody.takeLease), taken before a move
 * stores its pending sharing and held until it ended. Without it, two moves (a rotation retried
 * through another worker, two scheduled refreshes) could stage at once: each overwrites the
 * other's pending shares on the Keepers, and the one that switches the store could promote the
 * other's shares there. The lease expires on its own (a process that crashed mid-move blocks
 * the next one for at most MOVE_LEASE_TTL_MS).
 */
import { randomBytes } from 'node:crypto';
import { custodyOf, type Store } from '../../store/index.js';
import { MoveError } from './move.js';

/** System record of the lease. */
export const MOVE_LEASE_RECORD = 'sharing_move_lease';
/** Longer than any move takes (its Keeper pushes have their own timeouts). */
export const MOVE_LEASE_TTL_MS = 10 * 60_000;

/**
 * Takes the lease (throws `move_in_progress` while another process holds it); resolves with
 * its release, or with a no-op where the store has no key custody (memory: one process).
 */
export async function takeMoveLease(store: Store): Promise<() => void> {
  const custody = custodyOf(store);
  if (!custody) return () => undefined;
  const owner = randomBytes(16);
  if (!(await custody.takeLease(MOVE_LEASE_RECORD, owner, MOVE_LEASE_TTL_MS))) throw new MoveError('move_in_progress');
  return () => {
    custody.releaseLease(MOVE_LEASE_RECORD, owner).catch(() => undefined); // it expires anyway
  };
}
