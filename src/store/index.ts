/**
 * The storage layer: one interface (types.ts), the versioning rules once (model.ts), the
 * sealed core of the persistent backends (sealed.ts, codec.ts, key-check.ts), and the
 * backends: memory, lite, sqlite/, postgres/. `openStore` picks one from configuration.
 */
export {
  type BackendKind, type SecretVersionInfo, type SecretMetadata, type PutSecretOptions, type PolicyRecord,
  type PolicyInput, type Store, type StoreErrorCode, type CommonStoreOptions, type KeyAdoption, type AdoptionResult,
  StoreError, UnsupportedInLiteModeError,
} from './types.js';
export { DEFAULT_MAX_VERSIONS } from './model.js';
export { KEY_CHECK_RECORD } from './key-check.js';
export { RecordSealer, STORAGE_KEY_ID } from './codec.js';
export { MemoryStore } from './memory.js';
export { LiteStore } from './lite.js';
export { SqliteStore, openSqliteStore, toStoreError, type SqliteStoreOptions } from './sqlite/index.js';
export {
  PostgresStore, openPostgresStore, pgToStoreError, POLICY_CHANNEL, type PostgresStoreOptions,
  postgresOptionsFromEnv, type PostgresEnvOptions,
} from './postgres/index.js';
export { openStore, type OpenStoreOptions } from './open.js';
export { stringMapFromPairs } from './model.js';
