/**
 * The storage layer: one interface (types.ts), the versioning rules once (model.ts), the
 * sealed core of the persistent backends (sealed.ts, codec.ts, key-check.ts), and the
 * backends: memory, lite, sqlite/, postgres/. `openStore` picks one from configuration;
 * `backupSqliteFile` / `verifySqliteBackup` serve `spike-nexus backup` (docs/backup.md).
 * The keyring (keyring.ts; one ring per key family in ring.ts), its custody in an unlocked
 * store (key-custody.ts: seal counters, root-key switch) and the background re-encryption
 * (reencrypt.ts) serve key rotation.
 */
export {
  type SecretVersionInfo, type SecretMetadata, type PutSecretOptions, type SecretPathPage, type SecretPathQuery, type Store, StoreError, type StoreFailureCause, type StoreOutcome,
  STORE_FAILURE_TEXT,
} from './types.js';
export { storeFailure, storeFailureText, type StoreFailure } from './health.js';
export { KEY_CHECK_RECORD } from './key-check.js';
export { SqliteStore, BackupError, backupSqliteFile, verifySqliteBackup, type BackupInfo } from './sqlite/index.js';
export type { PostgresEnvOptions } from './postgres/index.js';
export { createStore, custodyOf, lockStore, openStore, type OpenStoreOptions } from './open.js';
export { Keyring, KEYRING_RECORD, DEFAULT_SEAL_LIMIT, type Ring } from './keyring.js';
export { KeyCustody } from './key-custody.js';
export { Reencryptor, DEFAULT_REENCRYPT_RATE, type ReencryptProgress } from './reencrypt.js';
export { type StoreObserver, instrumentStore } from './instrument.js';
export { stringMapFromPairs } from './model.js';
export {
  ANCHOR_RECORD, ANCHOR_MAC_BYTES, ANCHOR_RECORD_BYTES, ANCHOR_HISTORY_KEEP, MAX_ANCHOR_COUNTER, anchorCounter, anchorNonce, anchorPrefix, sameAnchorRecord, type AnchorSealer, type CommitAnchor,
} from './anchor.js';
