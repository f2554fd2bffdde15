/**
 * The database drivers, loaded on first use rather than at import time: the store package is
 * imported by every binary (configuration reads the postgres settings through it), but only a
 * Nexus that opens a database needs better-sqlite3 or pg. A Keeper or the CLI never loads
 * them, which keeps their memory small (issue 17: an idle Keeper's RSS).
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';

const load = createRequire(import.meta.url);

let sqlite: typeof BetterSqlite3 | undefined;
let postgres: typeof pg | undefined;

/** better-sqlite3's `Database` constructor. */
export function sqliteDriver(): typeof BetterSqlite3 {
  sqlite ??= load('better-sqlite3') as typeof BetterSqlite3;
  return sqlite;
}

/** The `pg` module (its `Pool`). */
export function pgDriver(): typeof pg {
  postgres ??= load('pg') as typeof pg;
  return postgres;
}
