/** The `postgres` backend: one database shared by several Nexus instances; its environment variables. */
export { openPostgresStore, POLICY_CHANNEL, PostgresStore, type PostgresStoreOptions } from './store.js';
export type { PostgresEnvOptions } from './env.js';
