/** The `postgres` backend: one database shared by several Nexus instances; its environment variables. */
export { PostgresStore, openPostgresStore, pgToStoreError, POLICY_CHANNEL, type PostgresStoreOptions } from './store.js';
export { postgresOptionsFromEnv, type PostgresEnvOptions } from './env.js';
