/**
 * `openStore`: the one place that turns configuration into a backend. Defaults live in
 * each backend's options; this only dispatches on `kind`.
 */
import type { Logger } from '../lib/index.js';
import { LiteStore } from './lite.js';
import { MemoryStore } from './memory.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { KeyCustody } from './key-custody.js';
import { SealedStore } from './sealed.js';
import { StoreError, type BackendKind, type CommonStoreOptions, type Store } from './types.js';

export interface OpenStoreOptions extends CommonStoreOptions {
  kind: BackendKind;
  /** sqlite: the database file (`<dataDir>/spike.db`). Required for `sqlite`. */
  file?: string;
  logger?: Logger;
  /** sqlite: SQLite busy timeout in ms (SPIKE_NEXUS_DB_BUSY_TIMEOUT_MS). */
  busyTimeoutMs?: number;
  /** sqlite, postgres: most seals under one storage key before it rotates (SPIKE_NEXUS_AEAD_SEAL_LIMIT). */
  sealLimit?: number;
  /** sqlite: group commit on/off (default on). */
  groupCommit?: boolean;
  /** sqlite: called with the size of every committed group (metrics). */
  onCommitBatch?: (size: number) => void;
  /** sqlite: other processes write the same file (several Nexus workers; see the sqlite store). */
  shared?: boolean;
  /** postgres: connection URL (SPIKE_NEXUS_DATABASE_URL). Required for `postgres`. */
  connectionString?: string;
  /** postgres: pool size (SPIKE_NEXUS_DB_MAX_OPEN_CONNS, default 10). */
  maxConnections?: number;
  /** postgres: per-statement deadline in ms (SPIKE_NEXUS_DB_OPERATION_TIMEOUT, default 15 s). */
  operationTimeoutMs?: number;
  /** postgres: deadline of one connection attempt in ms (SPIKE_NEXUS_DB_CONNECT_TIMEOUT, default 5 s). */
  connectTimeoutMs?: number;
  /** postgres: connections are recycled after this many ms (SPIKE_NEXUS_DB_CONN_MAX_LIFETIME, default 1 h; 0 = never). */
  connMaxLifetimeMs?: number;
}

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const common: CommonStoreOptions = {};
  if (opts.defaultMaxVersions !== undefined) common.defaultMaxVersions = opts.defaultMaxVersions;
  if (opts.now !== undefined) common.now = opts.now;
  switch (opts.kind) {
    case 'memory':
      return new MemoryStore(common);
    case 'lite':
      return new LiteStore();
    case 'sqlite': {
      if (!opts.file) throw new StoreError('store_invalid_argument');
      return openSqliteStore({
        ...common,
        file: opts.file,
        ...(opts.logger ? { logger: opts.logger } : {}),
        ...(opts.busyTimeoutMs !== undefined ? { busyTimeoutMs: opts.busyTimeoutMs } : {}),
        ...(opts.groupCommit !== undefined ? { groupCommit: opts.groupCommit } : {}),
        ...(opts.onCommitBatch ? { onCommitBatch: opts.onCommitBatch } : {}),
        ...(opts.shared === true ? { shared: true } : {}),
        ...(opts.sealLimit !== undefined ? { sealLimit: opts.sealLimit } : {}),
      });
    }
    case 'postgres': {
      const { store, init } = createStore({ ...opts, kind: 'postgres' });
      try {
        await init();
      } catch (e) {
        await store.close().catch(() => undefined);
        throw e;
      }
      return store;
    }
    default: {
      const never: never = opts.kind;
      throw new StoreError('store_invalid_argument', { cause: never });
    }
  }
}

/** Every documented `postgres` setting, passed through to the pool (none dropped on the way). */
function postgresOptions(opts: OpenStoreOptions, common: CommonStoreOptions): PostgresStoreOptions {
  if (!opts.connectionString) throw new StoreError('store_invalid_argument');
  return {
    ...common,
    connectionString: opts.connectionString,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    ...(opts.operationTimeoutMs !== undefined ? { operationTimeoutMs: opts.operationTimeoutMs } : {}),
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.connMaxLifetimeMs !== undefined ? { connMaxLifetimeMs: opts.connMaxLifetimeMs } : {}),
    ...(opts.sealLimit !== undefined ? { sealLimit: opts.sealLimit } : {}),
  };
}

/**
 * The key custody (keyring, rotation, re-encryption steps) of an unlocked persistent store;
 * null for memory and lite (nothing is sealed at rest) or while locked.
 */
export function custodyOf(store: Store): KeyCustody | null {
  return store instanceof SealedStore && store.isUnlocked() ? store.custody() : null;
}

/** Locks an unlocked persistent store again (`SealedStore.lock`); false for memory and lite or when locked. */
export function lockStore(store: Store): boolean {
  return store instanceof SealedStore && store.lock();
}

/**
 * The `postgres` store at once, without touching the database, plus its `init` (schema
 * migration; safe to call again after a failure). Nexus listens first and retries `init`
 * in the background, so it answers "not ready" while the database is down instead of not
 * answering at all.
 */
export function createStore(opts: OpenStoreOptions & { kind: 'postgres' }): { store: Store; init: () => Promise<void> } {
  const common: CommonStoreOptions = {};
  if (opts.defaultMaxVersions !== undefined) common.defaultMaxVersions = opts.defaultMaxVersions;
  if (opts.now !== undefined) common.now = opts.now;
  const store = new PostgresStore(postgresOptions(opts, common));
  return { store, init: () => store.init() };
}
