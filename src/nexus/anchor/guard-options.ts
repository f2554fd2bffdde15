/** What the rollback guard (guard.ts) is built with. */
import type { KeeperClient } from '../../keeper/index.js';
import type { Logger } from '../../lib/index.js';
import type { CommitAnchor } from '../../store/index.js';
import type { AuditEvents } from '../audit.js';
import type { KeyState } from '../keys/state.js';
import type { AnchorObserver } from './pusher.js';

export interface RollbackGuardOptions {
  anchor: CommitAnchor;
  keys: KeyState;
  peers: readonly string[];
  client: KeeperClient;
  logger: Logger;
  audit: AuditEvents;
  observer?: AnchorObserver;
  /** Debounce of the anchor push after writes (default 500 ms). */
  debounceMs?: number;
  /**
   * Whether another process switched the store to a newer root key (KeyCustody.rootMovedOn).
   * Asked when the stored anchor stops verifying while serving, before calling it a rollback.
   */
  rootMovedOn?: () => Promise<boolean>;
  /** This process turned stale (another one rotated the root key), e.g. to be replaced. */
  onStale?: () => void;
  /** Serving again after another process's accept: the store went back (e.g. reload the policies). */
  onAcceptedElsewhere?: () => Promise<void>;
  /** How often the stored anchor is looked at while serving (default 5 s; tests shorten it). */
  recheckMs?: number;
  /** The start-up check's wait for every Keeper (keepers.ts; SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW). */
  checkWindowMs?: number;
  /** The start-up check's longest wait for a threshold (keepers.ts; SPIKE_NEXUS_ROLLBACK_CHECK_MAX). */
  checkMaxMs?: number;
}
