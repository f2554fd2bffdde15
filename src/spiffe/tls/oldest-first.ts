/**
 * A set that hands out its oldest member cheaply, for admission.ts's per-source handshake
 * lists. A JavaScript `Set` keeps insertion order, but V8 leaves a hole for every deleted entry
 * until the table is rebuilt, so taking the first value of a set whose oldest members keep
 * being deleted (a flood evicting its own oldest at every accept) walks all those holes:
 * measured, most of an accept's cost under a full handshake budget. Here membership is a
 * `Set` (lookups only) and age order an array read from a moving head; a member deleted
 * elsewhere in the array is skipped when the head reaches it, and the array is compacted when
 * mostly dead.
 */
export class OldestFirst<T> {
  readonly #live = new Set<T>();
  #order: T[] = [];
  #head = 0;

  get size(): number {
    return this.#live.size;
  }

  /** Adds `x` as the newest member (a member already present keeps its place). */
  add(x: T): void {
    if (this.#live.has(x)) return;
    this.#live.add(x);
    this.#order.push(x);
    // Mostly dead (members deleted out of order, behind a long-lived oldest): keep the live ones.
    if (this.#order.length - this.#head > 64 && this.#order.length - this.#head > 4 * this.#live.size) {
      this.#order = this.#order.slice(this.#head).filter((m) => this.#live.has(m));
      this.#head = 0;
    }
  }

  /** Removes `x`; true if it was a member. */
  delete(x: T): boolean {
    return this.#live.delete(x);
  }

  /** The oldest member, or undefined when empty. */
  oldest(): T | undefined {
    while (this.#head < this.#order.length && !this.#live.has(this.#order[this.#head] as T)) this.#head++;
    if (this.#head >= this.#order.length) {
      this.#order = [];
      this.#head = 0;
      return undefined;
    }
    if (this.#head > 1024 && 2 * this.#head > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    return this.#order[this.#head];
  }
}
