/**
 * The storage layer: one interface (types.ts), the versioning rules once (model.ts), the
 * sealed core of the persistent backends (sealed.ts, codec.ts, key-check.ts), and the
 * backends: memory, lite, sqlite/, postgres/. `openStore` picks one from configuration;
 * `backupSqliteFile` / `verifySqliteBackup` serve `spike-nexus backup` (docs/backup.md).
 */
export {
  type SecretVersionInfo, type SecretMetadata, type PutSecretOptions, type SecretPathPage, type SecretPathQuery, type Store, StoreError, type StoreFailureCause, type StoreOutcome,
  STORE_FAILURE_TEXT,
} from './types.js';
export { storeFailure, storeFailureText, type StoreFailure } from './health.js';
export { KEY_CHECK_RECORD } from './key-check.js';
export { SqliteStore, BackupError, backupSqliteFile, verifySqliteBackup, type BackupInfo } from './sqlite/index.js';
export type { PostgresEnvOptions } from './postgres/index.js';
export { createStore, openStore, type OpenStoreOptions } from './open.js';
export { type StoreObserver, instrumentStore } from './instrument.js';
export { stringMapFromPairs } from './model.js';
export {
  ANCHOR_RECORD, ANCHOR_MAC_BYTES, ANCHOR_RECORD_BYTES, anchorCounter, anchorPrefix, type AnchorSealer, type CommitAnchor,
} from './anchor.js';
