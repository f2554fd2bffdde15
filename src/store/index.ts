/** The storage layer: one interface (types.ts), semantics once (secrets-model.ts), backends. */
export {
  type BackendKind, type SecretVersionInfo, type SecretMetadata, type PutSecretOptions, type PolicyRecord,
  type PolicyInput, type Store, type StoreErrorCode, type CommonStoreOptions, StoreError, UnsupportedInLiteModeError,
} from './types.js';
export { DEFAULT_MAX_VERSIONS } from './model.js';
export { MemoryStore } from './memory.js';
export { LiteStore } from './lite.js';
export { SqliteStore, openSqliteStore, toStoreError, STORE_CHECK_KEY, type SqliteStoreOptions } from './sqlite/store.js';
export { RecordSealer, STORAGE_KEY_ID } from './codec.js';
export {
  PostgresStore, openPostgresStore, pgToStoreError, POLICY_CHANNEL, type PostgresStoreOptions,
} from './postgres/store.js';
export { postgresOptionsFromEnv, type PostgresEnvOptions } from './postgres/env.js';
export { openStore, type OpenStoreOptions } from './open.js';
