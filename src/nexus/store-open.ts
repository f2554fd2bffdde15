/**
 * Opening Nexus's store: the store options of its configuration, and the postgres store's
 * start-up `init` retried while the database is down.
 */
import path from 'node:path';
import type { NexusConfig } from '../config/index.js';
import { backoffDelay, type Logger } from '../lib/index.js';
import type { OpenStoreOptions } from '../store/index.js';

/** The store options of `cfg` (every postgres setting included). */
export function storeOptions(cfg: NexusConfig, logger: Logger, onCommitBatch?: (size: number) => void): OpenStoreOptions {
  return {
    kind: cfg.backend,
    file: cfg.backend === 'sqlite' ? path.join(cfg.dataDir, 'spike.db') : undefined,
    busyTimeoutMs: cfg.dbBusyTimeoutMs,
    sealLimit: cfg.aeadSealLimit,
    defaultMaxVersions: cfg.maxSecretVersions,
    ...(cfg.postgres ?? {}),
    ...(onCommitBatch ? { onCommitBatch } : {}),
    ...(cfg.backend === 'sqlite' && cfg.workers > 1 ? { shared: true } : {}),
    logger,
  };
}

/** Cap of the retry interval while the database is down at start-up: bounds the readiness lag once it is back. */
const DB_INIT_MAX_BACKOFF_MS = 1000;

/**
 * Runs the postgres store's `init` until it succeeds (the database is down or unreachable:
 * retried with backoff capped at {@link DB_INIT_MAX_BACKOFF_MS}, so Nexus is ready at most
 * that long plus one connect after the database answers again). A failure that will not
 * fix itself (schema too new, invalid) goes to `onFatal`.
 */
export async function initWithRetry(init: () => Promise<void>, logger: Logger, stopped: () => boolean, onFatal: (e: unknown) => void): Promise<boolean> {
  for (let attempt = 0; !stopped(); attempt++) {
    try {
      await init();
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'store_unavailable' && code !== 'store_busy') {
        onFatal(e);
        return false;
      }
      const wait = backoffDelay(attempt, { initialMs: 250, maxMs: DB_INIT_MAX_BACKOFF_MS });
      if (attempt === 0 || attempt % 30 === 0) logger.warn({ reason: code, retryInMs: wait, attempt }, 'database unavailable; retrying');
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }
  return false;
}
