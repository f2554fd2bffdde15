/**
 * The database drivers, loaded on first use rather than at import time: the store package is
 * imported by every binary (configuration reads the postgres settings through it), but only a
 * Nexus that opens a database needs better-sqlite3 or pg. A Keeper or the CLI never loads
 * them, which keeps their memory small (issue 17: an idle Keeper's RSS).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';

const load = createRequire(import.meta.url);

let sqlite: typeof BetterSqlite3 | undefined;
let postgres: typeof pg | undefined;

/** better-sqlite3's `Database` constructor. */
function sqliteDriver(): typeof BetterSqlite3 {
  sqlite ??= load('better-sqlite3') as typeof BetterSqlite3;
  return sqlite;
}

let addon: string | null | undefined;

/**
 * better-sqlite3's compiled addon at its install path (`build/Release`), or null when it is not
 * there. Without it better-sqlite3 finds the addon through the `bindings` package, which tries a
 * dozen candidate paths with a failing `require` each: about 0.1–0.2 s of CPU at every Nexus
 * start. Null leaves that search to find it, as before.
 */
function sqliteAddon(): string | null {
  if (addon !== undefined) return addon;
  const file = path.join(path.dirname(load.resolve('better-sqlite3')), '..', 'build', 'Release', 'better_sqlite3.node');
  addon = fs.existsSync(file) ? file : null;
  return addon;
}

/** Opens a better-sqlite3 database (`new Database(file, options)`), its addon loaded from its known path. */
export function openSqlite(file: string, options: BetterSqlite3.Options = {}): BetterSqlite3.Database {
  const native = sqliteAddon();
  return new (sqliteDriver())(file, native === null ? options : { nativeBinding: native, ...options });
}

/** Where better-sqlite3 and its addon are (null: found by its own search), for a worker thread that opens the file too. */
export function sqliteDriverFiles(): { driver: string; binding: string | null } {
  return { driver: load.resolve('better-sqlite3'), binding: sqliteAddon() };
}

/** The `pg` module (its `Pool`). */
export function pgDriver(): typeof pg {
  postgres ??= load('pg') as typeof pg;
  return postgres;
}
