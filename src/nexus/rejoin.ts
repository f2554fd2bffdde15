/**
 * A lone Nexus process (not a worker: a worker is replaced by its primary, workers/) whose
 * root key another process rotated away — another instance on the same PostgreSQL database —
 * recovers the new key by itself, without a restart (docs/key-lifecycle.md, "Limits").
 *
 * The rollback guard (anchor/guard.ts) has already judged it: the stored anchor stopped
 * verifying, the store says the key check no longer opens under this root AND names a newer
 * storage generation, and the Keepers (which whoever writes the database cannot move) hold a
 * newer sharing epoch. Only then, in this order: the share re-push pauses (no share of the
 * old sharing goes out again), the anchor keys and the root key with its basis and derived
 * keys are zeroed and dropped, the store is locked (its keyring destroyed), and recovery runs
 * again exactly as at start-up: `threshold` Keeper shares verified against the STORED
 * commitments, the rebuilt key accepted only if it opens the stored key check, then the
 * start-up rollback check against the Keepers' anchors before anything is served. Recovery
 * retries with its backoff while the Keepers are not there. The process answers 503
 * `state_not_ready` (readiness `root_key`, `root_rotated_elsewhere`) throughout.
 */
import { errInfo, type Logger } from '../lib/index.js';
import { lockStore, type Store } from '../store/index.js';
import type { RollbackGuard } from './anchor/index.js';
import type { AuditEvents } from './audit.js';
import type { KeeperSync } from './keys/recovery.js';
import type { KeyState } from './keys/state.js';

export interface RejoinOptions {
  keys: KeyState;
  store: Store;
  sync: KeeperSync;
  guard: RollbackGuard;
  logger: Logger;
  audit: AuditEvents;
}

/** The guard's `onStale` for a lone process: drop the old key, recover the new one. One at a time. */
export function rejoinAfterRotation(o: RejoinOptions): () => void {
  let running = false;
  return () => {
    if (running) return;
    running = true;
    void (async () => {
      const epoch = o.keys.sharing()?.epoch ?? 0;
      await o.sync.pauseRepush();
      o.guard.dropKeys();
      o.keys.clear();
      lockStore(o.store);
      o.audit.event('key.dropped', { reason: 'root_rotated_elsewhere', epoch });
      o.logger.warn({ reason: 'root_rotated_elsewhere', epoch },
        'the old root key is dropped; recovering the new one from the Keepers as at start-up (not ready until then)');
      o.sync.recoverAgain();
    })().catch((e: unknown) => {
      // Nothing above is expected to throw; if it did, the process stays not ready (stale).
      o.logger.error({ reason: errInfo(e) }, 'could not return to recovery after a root-key rotation elsewhere; restart this Nexus');
    }).finally(() => {
      running = false;
    });
  };
}
