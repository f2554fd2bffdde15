/**
 * The rollback decision, pure: the store's anchor against the Keepers' anchors.
 *
 * Only anchors whose MAC verifies count (a Keeper cannot check them; a forged or foreign
 * one must never lock Nexus out). When the highest verified Keeper counter is above the
 * store's verified counter, the store lost acknowledged commits since that anchor was pushed:
 * an older copy was put in place, or the SQLite WAL was cut. A store record that does not
 * verify counts as counter 0 (its counter cannot be trusted); no record at all (a store from
 * before this check, a fresh store) is counter 0 too. Keepers holding nothing (restarted)
 * prove nothing: no refusal. A Keeper's record at a counter the store has reached that is not
 * the record the store's history holds there proves another history: the store was put back
 * and written on since (`diverged`).
 */

import type { RuntimeRollback } from './sealer.js';

/** Why service was refused while serving: the chain's causes, or the store behind a Keeper's anchor (witness.ts). */
export type AlarmCause = RuntimeRollback | 'behind_keepers';
const STORE_REPLACED = 'the store was replaced or restored under a running Nexus, or tampered with';
/** The alarm line's account of each cause of a refusal while serving. */
export const ALARM_TEXT: Record<AlarmCause | 'root_not_rotated', string> = {
  root_not_rotated: 'the store said another Nexus had rotated the root key, but the Keepers gave back the same key: nothing rotated, the store\'s key records were changed (the store was replaced or tampered with); ',
  unverified: `the store's rollback anchor does not verify (${STORE_REPLACED}); `,
  vanished: `the store's rollback anchor vanished (${STORE_REPLACED}); `,
  behind: `the store's rollback anchor went back (${STORE_REPLACED}); `,
  behind_keepers: `the store is older than the anchor the Keepers hold (${STORE_REPLACED}, and another Nexus process had seen the newer state, or acknowledged commits were lost); `,
  diverged: `the store's history no longer holds an anchor record that was seen in it (${STORE_REPLACED}, and written on since: acknowledged commits were lost); `,
};

export interface RollbackInput {
  /** The store's verified counter; undefined: no record, or one that does not verify. */
  store: bigint | undefined;
  /** True when the store holds a record that does not verify. */
  storeTampered: boolean;
  /** Per Keeper answer: its verified counter, `invalid` (held one that does not verify) or undefined (none / no answer). */
  keepers: ReadonlyArray<bigint | 'invalid' | undefined>;
  /** A Keeper's verified record at this counter is not the one the store's history holds there. */
  diverged?: bigint;
}

export interface RollbackVerdict {
  rollback: boolean;
  store: bigint;
  /** Highest verified Keeper counter (0 when none). */
  keeperMax: bigint;
  /** Keepers that answered with a verified anchor. */
  verified: number;
  /** Keepers that held an anchor that did not verify. */
  invalid: number;
  /** Set when a Keeper's record is of another history than the store's (the counter it is at). */
  diverged?: bigint;
}

export function decideRollback(i: RollbackInput): RollbackVerdict {
  const store = i.store ?? 0n;
  let keeperMax = 0n;
  let verified = 0;
  let invalid = 0;
  for (const k of i.keepers) {
    if (k === 'invalid') invalid++;
    else if (k !== undefined) {
      verified++;
      if (k > keeperMax) keeperMax = k;
    }
  }
  if (i.diverged !== undefined) return { rollback: true, store, keeperMax, verified, invalid, diverged: i.diverged };
  return { rollback: verified > 0 && keeperMax > store, store, keeperMax, verified, invalid };
}
