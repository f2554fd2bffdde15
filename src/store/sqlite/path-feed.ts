/**
 * What the path index (../path-catalog.ts) reads from a SQLite file: every secret's sealed
 * path, page by page, and what other processes (several Nexus workers on one file) created
 * since a mark. Schema 2's `path_log` records the order in which secret rows were created
 * (rows are never deleted); SQLite has one writer at a time, so that order is commit order and
 * "created since" is one indexed range read instead of a rebuild that decrypts every path.
 *
 * The log is kept by a trigger on `secrets` (schema.ts).
 *
 * A mark is `<data_version>:<last path_log seq>`, both read in one read transaction.
 * `PRAGMA data_version` moves only when ANOTHER connection committed (this process's own
 * creations reach the index directly), so while it stands still nothing is read at all.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { visitPathPages, type PathRow } from '../path-catalog.js';
import type { ReadTransaction } from './file.js';

export class SqlitePathFeed {
  readonly #db: BetterSqlite3.Database;
  readonly #oneRead: ReadTransaction;
  readonly #st;

  /** `oneRead` runs the mark's two reads in one read transaction (file.ts). */
  constructor(db: BetterSqlite3.Database, oneRead: ReadTransaction) {
    this.#db = db;
    this.#oneRead = oneRead;
    this.#st = {
      page: db.prepare('SELECT id, path FROM secrets WHERE id > ? ORDER BY id LIMIT ?'),
      last: db.prepare('SELECT COALESCE(MAX(seq), 0) FROM path_log').pluck(),
      since: db.prepare('SELECT s.id, s.path FROM path_log l JOIN secrets s ON s.id = l.id WHERE l.seq > ? ORDER BY l.seq'),
    };
  }

  /**
   * Pages in key order (keyset: `id > last`) through `read` (the store's read wrapper), the
   * mark read before the first page: a secret committed while the pages are read is also in
   * the next {@link since}.
   */
  async readAll(read: <T>(fn: () => T) => T, visit: (rows: PathRow[]) => Promise<void>): Promise<string> {
    const mark = read(() => this.#oneRead(() => this.#mark()));
    await visitPathPages((after, limit) => read(() => this.#st.page.all(after, limit) as PathRow[]), visit);
    return mark;
  }

  /**
   * The secrets created since `mark` by other processes (and possibly by this one: adding a
   * path twice is harmless), with the new mark; null (rebuild) when the mark is not one of
   * ours or the log went backwards (another file was put in place).
   */
  since(read: <T>(fn: () => T) => T, mark: string): { rows: PathRow[]; mark: string } | null {
    const [version, seqText] = mark.split(':');
    const seq = Number(seqText);
    if (version === undefined || !Number.isSafeInteger(seq)) return null;
    return read(() => this.#oneRead(() => {
      const now = this.#mark();
      if (now.slice(0, now.indexOf(':')) === version) return { rows: [], mark };
      if (Number(this.#st.last.get()) < seq) return null;
      return { rows: this.#st.since.all(seq) as PathRow[], mark: now };
    }));
  }

  #mark(): string {
    return `${String(this.#db.pragma('data_version', { simple: true }))}:${String(this.#st.last.get())}`;
  }
}
