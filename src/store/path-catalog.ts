/**
 * Keeps a persistent store's {@link PathIndex} current, so that `list` never decrypts the
 * whole store (issue 18): the index is built once (after unlock, in the background,
 * decrypting in chunks that yield to the event loop), then kept current by
 *
 * - this process's own writes: a put that created a path adds it as soon as its commit
 *   returned, before the put is acknowledged (`noteCreated`);
 * - a cheap "created since" read before every listing (`refresh`), which the backend
 *   answers from the database: PostgreSQL returns the rows created by transactions its
 *   previous snapshot did not see (other instances), SQLite says whether any other
 *   connection committed at all (then the index is rebuilt).
 *
 * A listing waits for a refresh that STARTED after the listing was asked for (the same
 * queue discipline as the policy generation check): so every path whose write was
 * acknowledged, by any instance, before a listing began is in that listing.
 *
 * Nothing here logs or persists a path; the index is dropped on `clear()` (store close).
 */
import { yieldToLoop } from '../lib/index.js';
import { PathIndex } from './path-index.js';
import { StoreError } from './types.js';

/** Sealed path records decrypted between two turns of the event loop. */
const OPEN_CHUNK = 500;

/** Path records a backend reads per page when the index is built (see PathFeed.readAll). */
const PATH_PAGE = 500;

/**
 * Keyset paging for `PathFeed.readAll`: `page(after, limit)` returns up to `limit` records
 * whose id sorts after `after`, in id order; each page goes to `visit` before the next is read.
 */
export async function visitPathPages(page: (after: Buffer, limit: number) => Promise<PathRow[]> | PathRow[], visit: (rows: PathRow[]) => Promise<void>): Promise<void> {
  let after: Buffer = Buffer.alloc(0); // sorts before every id
  for (;;) {
    const rows = await page(after, PATH_PAGE);
    if (rows.length === 0) return;
    after = (rows[rows.length - 1] as PathRow).id;
    await visit(rows);
    if (rows.length < PATH_PAGE) return;
  }
}

/** A sealed path record as a backend reads it. */
export interface PathRow {
  id: Buffer;
  path: Buffer;
}

/**
 * What a backend contributes. `mark` is opaque to the catalog: the point of the
 * database's history a read corresponds to (a PostgreSQL snapshot, SQLite's data_version).
 */
export interface PathFeed {
  /**
   * Every path record, page by page to `visit` (a backend that can page keeps only one page of
   * sealed rows in memory: 100,000 rows read at once cost ~125 MiB that the allocator then
   * keeps), and the mark of the state read: taken before the first page, so anything
   * committed by others while the pages are read moves the mark and forces a rebuild.
   */
  readAll(visit: (rows: PathRow[]) => Promise<void>): Promise<string>;
  /** Records created since `mark` by anyone and the new mark; null = unknown changes (rebuild). */
  readSince(mark: string): Promise<{ rows: PathRow[]; mark: string } | null>;
}

export class PathCatalog {
  readonly index = new PathIndex();
  readonly #feed: PathFeed;
  readonly #open: (row: PathRow) => string;
  #mark: string | null = null;
  /** Paths created by this process while a build runs (its read may predate their commit). */
  #pending: string[] | null = null;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  /** Bumped by `clear()`: work begun before it is dropped. */
  #epoch = 0;

  /** `open` decrypts one record (throws StoreError, e.g. store_integrity or store_closed). */
  constructor(feed: PathFeed, open: (row: PathRow) => string) {
    this.#feed = feed;
    this.#open = open;
  }

  get built(): boolean {
    return this.#mark !== null;
  }

  /** A path this process just created (its commit returned). */
  noteCreated(path: string): void {
    if (this.#pending !== null) this.#pending.push(path);
    else if (this.#mark !== null) this.index.add(path);
    // not built and no build running: the next build reads the committed row
  }

  /**
   * Brings the index up to date with everything committed before this call: builds it
   * first if needed. Never joins a refresh whose read may already have been sent.
   */
  refresh(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (this.#running) {
      const queued = this.#running.catch(() => undefined).then(() => {
        this.#queued = undefined;
        return this.#start();
      });
      this.#queued = queued;
      return queued;
    }
    return this.#start();
  }

  /** Drops the index and any work in flight (the store is closing). */
  clear(): void {
    this.#epoch++;
    this.#mark = null;
    this.#pending = null;
    this.index.clear();
  }

  #start(): Promise<void> {
    const running: Promise<void> = this.#once().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }

  async #once(): Promise<void> {
    const epoch = this.#epoch;
    if (this.#mark === null) return this.#build(epoch);
    const delta = await this.#feed.readSince(this.#mark);
    this.#checkEpoch(epoch);
    if (delta === null) return this.#build(epoch);
    const paths = await this.#openAll(delta.rows, epoch);
    this.index.addMany(paths);
    this.#mark = delta.mark;
  }

  async #build(epoch: number): Promise<void> {
    const pending: string[] = [];
    this.#pending = pending;
    try {
      const paths: string[] = [];
      const mark = await this.#feed.readAll(async (rows) => {
        this.#checkEpoch(epoch);
        for (const p of await this.#openAll(rows, epoch)) paths.push(p);
        await yieldToLoop();
      });
      this.#checkEpoch(epoch);
      for (const p of pending) paths.push(p);
      this.index.replace(paths);
      this.#mark = mark;
    } finally {
      if (this.#pending === pending) this.#pending = null;
    }
  }

  #checkEpoch(epoch: number): void {
    if (epoch !== this.#epoch) throw new StoreError('store_closed');
  }

  async #openAll(rows: readonly PathRow[], epoch: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < rows.length; i++) {
      if (i > 0 && i % OPEN_CHUNK === 0) {
        await yieldToLoop();
        this.#checkEpoch(epoch);
      }
      out.push(this.#open(rows[i] as PathRow));
    }
    return out;
  }
}
