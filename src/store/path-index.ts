/**
 * The in-memory index of secret paths that makes `list` cost what it returns (issue 18):
 * a sorted array of the decrypted paths (code-unit order, no duplicates), binary search
 * for a prefix or a cursor, insertion in place.
 *
 * Paths are secrets themselves: this index lives in process memory only. It is never
 * written anywhere, never logged, and `clear()` drops it when the store closes.
 *
 * Paths are only ever added: a stored path is never removed (a secret whose versions are
 * all deleted or destroyed keeps its metadata row and stays listed), so the index grows
 * monotonically and a cursor (the last path a page returned) stays meaningful however the
 * store changes between two pages.
 */
import { sliceTurn, yieldToLoop } from '../lib/index.js';
import { compareCodeUnits } from './model.js';
import { StoreError, type SecretPathPage, type SecretPathQuery } from './types.js';

/** Paths read from the index between two turns of the event loop in a scan. */
const SCAN_CHUNK = 2000;
/** Longest stretch a scan with an `accept` (a policy decision per path) runs before it yields. */
const SCAN_SLICE_MS = 8;
/** Above this many new paths at once, merge by one sort instead of one insertion each. */
const BULK_MERGE = 64;

export class PathIndex {
  #paths: string[] = [];
  /** Bumped by `clear()` (the store closed or locked): a scan waiting for its turn then fails. */
  #cleared = 0;

  get size(): number {
    return this.#paths.length;
  }

  /** First position whose path is ≥ `s` (code units). */
  #lowerBound(s: string): number {
    let lo = 0;
    let hi = this.#paths.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#paths[mid] as string) < s) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  has(path: string): boolean {
    const i = this.#lowerBound(path);
    return this.#paths[i] === path;
  }

  /** Adds one path (no-op when present). */
  add(path: string): void {
    const i = this.#lowerBound(path);
    if (this.#paths[i] !== path) this.#paths.splice(i, 0, path);
  }

  /** Adds many paths (any order, duplicates allowed). */
  addMany(paths: readonly string[]): void {
    if (paths.length <= BULK_MERGE) {
      for (const p of paths) this.add(p);
      return;
    }
    this.#paths = sortedUnique(this.#paths.concat(paths));
  }

  /** Replaces the whole content (a rebuild). */
  replace(paths: readonly string[]): void {
    this.#paths = sortedUnique([...paths]);
  }

  clear(): void {
    this.#paths = [];
    this.#cleared++;
  }

  /**
   * Up to `max` paths that start with `prefix` and sort strictly after `after` (from the
   * start of the prefix range when undefined), ascending. Synchronous: memory only.
   */
  range(prefix: string, after: string | undefined, max: number): string[] {
    let i = this.#lowerBound(prefix);
    if (after !== undefined && after >= prefix) {
      i = Math.max(i, this.#lowerBound(after));
      if (this.#paths[i] === after) i++;
    }
    const out: string[] = [];
    for (; i < this.#paths.length && out.length < max; i++) {
      const p = this.#paths[i] as string;
      if (!p.startsWith(prefix)) break;
      out.push(p);
    }
    return out;
  }

  /**
   * One page of `q`: at most `q.limit` accepted paths in order and whether more accepted
   * ones follow. Reads in chunks and yields to the event loop after each chunk; with an
   * `accept`, it also stops for a shared turn (`sliceTurn`) before its first slice and
   * whenever it has worked for {@link SCAN_SLICE_MS} or `q.mayDecide` says the next path's
   * decision does not fit in this turn, so costly decisions never hold other
   * requests up longer than one slice per turn of the loop, whatever the number of listings.
   * After a yield it continues from the last path read (by value), so paths added meanwhile
   * are neither skipped nor repeated. Work is proportional to the paths of the
   * prefix range that are read, never to the size of the store.
   */
  async scan(q: SecretPathQuery): Promise<SecretPathPage> {
    const prefix = q.prefix ?? '';
    const limit = q.limit ?? Number.POSITIVE_INFINITY;
    const out: string[] = [];
    let cursor = q.after;
    const cleared = this.#cleared;
    for (let first = true; ; first = false) {
      // A scan that decides per path takes a turn before each slice, its first included: one
      // such slice per turn of the event loop, however many listings run (lib/yield.ts).
      if (q.accept !== undefined) await sliceTurn(q.owner);
      else if (!first) await yieldToLoop();
      // Emptied meanwhile (closed or locked): the rest of the range is unknown, not absent.
      if (this.#cleared !== cleared) throw new StoreError('store_closed');
      // Out of budget while it waited: no further decision.
      if (q.stop?.() === true) return { paths: out, more: false };
      const since = performance.now();
      const chunk = this.range(prefix, cursor, SCAN_CHUNK);
      let read = 0;
      for (const p of chunk) {
        if (q.accept !== undefined && q.mayDecide?.(p) === false) {
          if (read > 0) break; // decided at the next slice
          if (q.turnOfItsOwn !== undefined) { // a slice's first path: decided in a turn of its own
            await q.turnOfItsOwn();
            if (this.#cleared !== cleared) throw new StoreError('store_closed');
            if (q.stop?.() === true) return { paths: out, more: false };
          }
        }
        const ok = q.accept === undefined ? true : q.accept(p);
        if (ok === undefined) break; // `p` is decided at the next turn (the cursor stays before it)
        read++;
        cursor = p;
        if (ok) {
          if (out.length === limit) return { paths: out, more: true };
          out.push(p);
        }
        if (q.stop?.() === true) return { paths: out, more: false };
        if (q.accept !== undefined && performance.now() - since >= SCAN_SLICE_MS) break;
      }
      if (read === chunk.length && chunk.length < SCAN_CHUNK) return { paths: out, more: false };
    }
  }
}

/** Sorted (code units) without duplicates; sorts `a` in place. */
function sortedUnique(a: string[]): string[] {
  a.sort(compareCodeUnits);
  let w = 0;
  for (let r = 0; r < a.length; r++) {
    if (w === 0 || a[r] !== a[w - 1]) a[w++] = a[r] as string;
  }
  a.length = w;
  return a;
}
