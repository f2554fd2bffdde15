/**
 * Rollback detection (docs/key-lifecycle.md): the anchor's MAC (mac.ts), the decision
 * (decide.ts), the start-up check and `accept-rollback` (guard.ts, asking the Keepers in
 * keepers.ts), and the push of the store's anchor to the Keepers (pusher.ts).
 */
export { RollbackGuard, ROLLBACK_ERR, type RollbackState } from './guard.js';
export { type AnchorObserver } from './pusher.js';
