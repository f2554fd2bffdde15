/** The `sqlite` backend: one file, group commit, sealed records (the shared core in ../sealed.ts). */
export { SqliteStore, openSqliteStore, toStoreError, type SqliteStoreOptions } from './store.js';
