/**
 * The `postgres` backend's options that come from the environment. The parsing itself is
 * configuration's job (src/config/postgres-env.ts), so loading the configuration never loads
 * the store.
 */
import type { PostgresStoreOptions } from './store.js';

export type PostgresEnvOptions = Pick<PostgresStoreOptions,
  'connectionString' | 'maxConnections' | 'operationTimeoutMs' | 'connMaxLifetimeMs' | 'connectTimeoutMs'>;
