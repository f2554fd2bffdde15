/**
 * Reads the `postgres` backend's environment variables (documented in
 * docs/configuration.md) into the store's options. SPIKE's names where SPIKE has one
 * (`SPIKE_NEXUS_DB_*`), same defaults; a malformed value is a
 * ConfigError naming the variable, never its value (a URL may carry a password).
 * It lives with the configuration (the store only names the option type, imported as a type),
 * so that loading the configuration never loads the store: a Keeper imports this folder too,
 * and keeps to what it uses (issue 17).
 *
 *   SPIKE_NEXUS_DATABASE_URL           connection URL (required)
 *   SPIKE_NEXUS_DB_MAX_OPEN_CONNS      pool size per Nexus instance (default 10)
 *   SPIKE_NEXUS_DB_OPERATION_TIMEOUT   per-statement deadline (default 15s; 0 disables)
 *   SPIKE_NEXUS_DB_CONN_MAX_LIFETIME   connection recycling (default 1h; 0 = never)
 *   SPIKE_NEXUS_DB_CONNECT_TIMEOUT     connection attempt deadline (ours; default 5s)
 */
import { ConfigError, duration, int, optionalStr, type Env } from '../lib/index.js';
import type { PostgresEnvOptions } from '../store/index.js';

export function postgresOptionsFromEnv(env: Env): PostgresEnvOptions {
  const connectionString = optionalStr(env, 'SPIKE_NEXUS_DATABASE_URL');
  if (connectionString === undefined) {
    throw new ConfigError('SPIKE_NEXUS_DATABASE_URL', 'is required for the postgres backend');
  }
  if (!/^postgres(?:ql)?:\/\//.test(connectionString)) {
    throw new ConfigError('SPIKE_NEXUS_DATABASE_URL', 'must be a postgresql:// or postgres:// URL');
  }
  return {
    connectionString,
    maxConnections: int(env, 'SPIKE_NEXUS_DB_MAX_OPEN_CONNS', 10, 1, 10_000),
    operationTimeoutMs: duration(env, 'SPIKE_NEXUS_DB_OPERATION_TIMEOUT', 15_000, 0),
    connMaxLifetimeMs: duration(env, 'SPIKE_NEXUS_DB_CONN_MAX_LIFETIME', 3_600_000, 0),
    connectTimeoutMs: duration(env, 'SPIKE_NEXUS_DB_CONNECT_TIMEOUT', 5_000, 1),
  };
}
