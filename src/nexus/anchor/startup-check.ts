/**
 * The start-up rollback check's reads and verdict (guard.ts acts on it): every Keeper's anchor
 * (keepers.ts), THEN the store's, verified (mac.ts) and decided (decide.ts).
 *
 * Keepers first, then the store: a counter reaches the Keepers only after the store committed
 * it, so a store read AFTER the Keepers' answers covers every counter they showed. The other
 * order raced with another Nexus on the same database (postgres) writing and pushing between
 * the two reads: a false "rollback" at start-up.
 *
 * A Keeper's record at a counter the store has reached must be the record the store's history
 * holds there (when it still holds one): otherwise the store was put back and written on since,
 * by processes that had not seen the newer state (`diverged`; the counters alone pass).
 */
import type { Logger } from '../../lib/index.js';
import type { CommitAnchor } from '../../store/index.js';
import { decideRollback, type RollbackVerdict } from './decide.js';
import type { RollbackGuardOptions } from './guard-options.js';
import type { KeeperAnchors } from './keepers.js';
import { otherHistory } from './witness.js';
import type { AnchorKey } from './mac.js';

export interface StartupCheck {
  verdict: RollbackVerdict;
  /** The store's record as read, and its verified counter (undefined: none, or it does not verify). */
  stored: Uint8Array | null;
  store: bigint | undefined;
}

/**
 * Reads and decides. `seen`: the highest counter this process read before it dropped its keys
 * (a rejoin); a store below it is a rollback whatever the Keepers hold.
 */
export async function checkAtStartup(o: { keepers: KeeperAnchors; anchor: CommitAnchor; key: AnchorKey; seen: bigint; stopped: () => boolean; logger: Logger }): Promise<StartupCheck> {
  const { counters: keepers, records } = await o.keepers.collect(o.key, o.stopped);
  const stored = await o.anchor.read();
  const store = o.key.open(stored);
  const diverged = store === undefined ? undefined : await divergedAt(o.anchor, store, keepers, records);
  let verdict = decideRollback({ store, storeTampered: stored !== null && store === undefined, keepers, ...(diverged !== undefined ? { diverged } : {}) });
  if (store !== undefined && store < o.seen) {
    // A rollback dressed as a rotation elsewhere: forged store records took this process down
    // the stale path, and an older copy (not older than the Keepers' lagging anchor) was put
    // back meanwhile.
    verdict = { ...verdict, rollback: true, keeperMax: verdict.keeperMax > o.seen ? verdict.keeperMax : o.seen };
  }
  if (stored !== null && store === undefined) {
    o.logger.error({ alarm: 'anchor_record_unverified' }, 'the store\'s rollback anchor does not verify under this root key: it is not trusted and counts as 0');
  }
  if (verdict.invalid > 0) o.logger.warn({ keepers: verdict.invalid }, 'keepers hold rollback anchors that do not verify; ignored');
  return { verdict, stored, store };
}

/** The counter of a Keeper record (at or below the store's `store`) that the store's history holds other bytes for. */
async function divergedAt(anchor: CommitAnchor, store: bigint, keepers: ReadonlyArray<bigint | 'invalid' | undefined>,
  records: ReadonlyArray<Uint8Array | undefined>): Promise<bigint | undefined> {
  const seen = keepers.flatMap((c, i) => (typeof c === 'bigint' && c <= store && records[i] ? [{ counter: c, record: records[i]! }] : []));
  if (seen.length === 0) return undefined;
  const held = await anchor.recorded([...new Set(seen.map((r) => r.counter))]);
  return seen.find((r) => otherHistory(held.get(r.counter), r.record))?.counter;
}

/** The alarm for a rollback found at start-up: one audit event and one ERROR line. */
export function reportAtStartup(v: RollbackVerdict, o: Pick<RollbackGuardOptions, 'audit' | 'logger'>): void {
  const diverged: Record<string, string | number> = v.diverged === undefined ? {} : { cause: 'diverged', divergedAt: Number(v.diverged) };
  o.audit.event('rollback.detected', { storeCounter: Number(v.store), keeperCounter: Number(v.keeperMax), keepers: v.verified, ...diverged });
  o.logger.error(
    { alarm: 'state_rollback_detected', storeCounter: Number(v.store), keeperCounter: Number(v.keeperMax), keepersWithAnchor: v.verified, ...diverged },
    `STATE ROLLBACK DETECTED: ${v.diverged === undefined ? 'the store is older than the anchor the keepers hold' : 'the store\'s history differs from the anchor the keepers hold'} `
    + '(it was replaced by an older copy, or acknowledged commits were lost); Nexus refuses to serve. If this store was restored from a backup on purpose, run `spike operator accept-rollback`',
  );
}
