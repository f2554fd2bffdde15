/**
 * The `postgres` backend's options and their defaults (the environment variables behind
 * them: env.ts; each reaches the pool in store.ts).
 */
import type { SealedStoreOptions } from '../sealed.js';

export interface PostgresStoreOptions extends SealedStoreOptions {
  /** libpq-style URL, e.g. `postgresql://spike@db.internal:5432/spike` (SPIKE_NEXUS_DATABASE_URL). */
  connectionString: string;
  /** Pool size (SPIKE_NEXUS_DB_MAX_OPEN_CONNS, default 10). */
  maxConnections?: number;
  /** SPIKE_NEXUS_DB_OPERATION_TIMEOUT (default 15 s): server `statement_timeout`; client read timeout outside requests (inside one, the request deadline of lib/deadline.ts). */
  operationTimeoutMs?: number;
  /** Connection attempt deadline (default 5 s). */
  connectTimeoutMs?: number;
  /** Connections are recycled after this long (SPIKE_NEXUS_DB_CONN_MAX_LIFETIME, default 1 h; 0 = never). */
  connMaxLifetimeMs?: number;
  /** Idle connections are closed after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Retries of a transaction after a serialization failure or deadlock (default 5). */
  maxRetries?: number;
}

export const DEFAULTS = {
  maxConnections: 10,
  operationTimeoutMs: 15_000,
  connectTimeoutMs: 5_000,
  connMaxLifetimeMs: 3_600_000,
  idleTimeoutMs: 30_000,
  maxRetries: 5,
} as const;

