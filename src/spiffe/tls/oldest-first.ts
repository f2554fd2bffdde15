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
  /** Each member and the absolute position of its entry in the order (`#base` + index). */
  readonly #pos = new Map<T, number>();
  #order: T[] = [];
  /** Absolute position of `#order[0]`. */
  #base = 0;
  #head = 0;

  get size(): number {
    return this.#pos.size;
  }

  /** Adds `x` as the newest member (a member already present keeps its place). */
  add(x: T): void {
    if (this.#pos.has(x)) return;
    this.#pos.set(x, this.#base + this.#order.length);
    this.#order.push(x);
    // Mostly dead (members deleted out of order, behind a long-lived oldest): keep the live ones.
    if (this.#order.length - this.#head > 64 && this.#order.length - this.#head > 4 * this.#pos.size) this.#compact();
  }

  has(x: T): boolean {
    return this.#pos.has(x);
  }

  /** Removes `x`; true if it was a member. */
  delete(x: T): boolean {
    return this.#pos.delete(x);
  }

  /** The oldest member, or undefined when empty. */
  oldest(): T | undefined {
    while (this.#head < this.#order.length && !this.#live(this.#head)) this.#head++;
    if (this.#head >= this.#order.length) {
      // Every member has its entry at or after the head: none is left.
      this.#order = [];
      this.#base = 0;
      this.#head = 0;
      return undefined;
    }
    if (this.#head > 1024 && 2 * this.#head > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
    return this.#order[this.#head];
  }

  /**
   * Whether the entry at index `i` is its member's current one. A member deleted and added
   * again has a newer entry; its old one, still in the order, must not count as its age.
   */
  #live(i: number): boolean {
    return this.#pos.get(this.#order[i] as T) === this.#base + i;
  }

  #compact(): void {
    const keep: T[] = [];
    for (let i = this.#head; i < this.#order.length; i++) if (this.#live(i)) keep.push(this.#order[i] as T);
    this.#order = keep;
    this.#base = 0;
    this.#head = 0;
    keep.forEach((m, i) => this.#pos.set(m, i));
  }
}
