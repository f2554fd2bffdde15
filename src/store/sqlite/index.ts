/** The `sqlite` backend: one file, group commit, sealed records (the shared core in ../sealed.ts). */
export { SqliteStore, openSqliteStore } from './store.js';
export { BackupError, backupSqliteFile, verifySqliteBackup, type BackupInfo, type SqliteBackupOptions } from './backup.js';
