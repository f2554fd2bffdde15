/**
 * The policy engine's per-caller cache (POL-24): for each caller SPIFFE ID, the policies whose
 * identity pattern fully matches it. A two-generation LRU approximation bounded to `size`
 * callers: hits in `young` cost one lookup, hits in `old` are promoted, and when `young` is
 * full it becomes `old` (the previous `old` is dropped).
 *
 * On an incremental policy change the engine forgets only the callers the changed policy
 * concerns ({@link CallerCache.forgetHolding}, {@link CallerCache.forgetMatching}), so a
 * write does not make every caller pay a cold lookup again; a full load clears everything.
 */

/** What the cache needs to know about an identity pattern. */
interface IdMatcher {
  readonly literal: string | null;
  readonly prefix: string;
  /** Worst-case work per character matched (program size; patterns.ts). */
  cost(): number;
  matches(s: string): boolean;
}

/**
 * Most pattern work (instructions × caller characters, as MAX_DECISION_WORK in engine.ts)
 * one policy write may spend finding the cached callers its identity pattern matches (FI-13):
 * past it the whole cache is cleared instead, which is always correct (every caller's next
 * request looks its policies up again). 4,096 cached callers of 70 characters against a
 * 245-instruction pattern were ~30–70 ms per write.
 */
const MAX_FORGET_WORK = 1_000_000;

export class CallerCache<E> {
  private young = new Map<string, E[]>();
  private old = new Map<string, E[]>();
  private readonly half: number;

  constructor(size: number) {
    this.half = Math.max(1, size >> 1);
  }

  /** The cached list for `caller`, or undefined (a hit in the older half is promoted). */
  get(caller: string): E[] | undefined {
    const hit = this.young.get(caller);
    if (hit !== undefined) return hit;
    const older = this.old.get(caller);
    if (older !== undefined) this.set(caller, older);
    return older;
  }

  set(caller: string, list: E[]): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(caller, list);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }

  /** Forgets every caller whose cached list holds `entry` (the entry is going away or changing). */
  forgetHolding(entry: E): void {
    for (const map of [this.young, this.old]) {
      for (const [caller, list] of map) if (list.includes(entry)) map.delete(caller);
    }
  }

  /** Forgets every caller that `id` fully matches (a policy for them is being added). */
  forgetMatching(id: IdMatcher): void {
    if (id.literal !== null) {
      this.young.delete(id.literal);
      this.old.delete(id.literal);
      return;
    }
    let work = 0;
    for (const map of [this.young, this.old]) {
      for (const caller of map.keys()) if (caller.startsWith(id.prefix)) work += caller.length + 1;
    }
    if (work > 0 && work * id.cost() > MAX_FORGET_WORK) {
      this.clear();
      return;
    }
    for (const map of [this.young, this.old]) {
      for (const caller of map.keys()) if (caller.startsWith(id.prefix) && id.matches(caller)) map.delete(caller);
    }
  }
}
