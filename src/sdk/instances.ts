/**
 * Which Nexus instance the SDK tries first (fail-over order across SPIKE_NEXUS_API_URL).
 *
 * - The instance that answered last is preferred; calls start there and go round the list.
 * - An instance that fails (no answer, or a 502/503/504) is put in a cool-down that doubles
 *   with each consecutive failure ({@link COOL_DOWN}: 1 s, 2 s, 4 s … capped at 30 s) and is
 *   tried only after every instance not cooling down — so an instance cut off from its
 *   database (answering 503 after a full deadline, or not at all) stops costing each call a
 *   wait. It is never skipped outright: when every instance is cooling down, all are tried
 *   in order, and its first success clears its record.
 */

/** Cool-down of a failing instance: first, doubling per consecutive failure, cap. */
export const COOL_DOWN = { firstMs: 1000, maxMs: 30_000 } as const;

export class InstanceOrder {
  #preferred = 0;
  readonly #failures: number[];
  readonly #until: number[];

  constructor(readonly count: number, private readonly now: () => number = Date.now) {
    this.#failures = new Array<number>(count).fill(0);
    this.#until = new Array<number>(count).fill(0);
  }

  /** The order of this call's attempts: healthy instances from the preferred one on, then cooling ones. */
  order(): number[] {
    const t = this.now();
    const all = Array.from({ length: this.count }, (_, k) => (this.#preferred + k) % this.count);
    return [...all.filter((i) => this.#until[i]! <= t), ...all.filter((i) => this.#until[i]! > t)];
  }

  /** Instance `i` answered (any answer that is not a 502/503/504): prefer it, clear its record. */
  succeeded(i: number): void {
    this.#preferred = i;
    this.#failures[i] = 0;
    this.#until[i] = 0;
  }

  /** Instance `i` failed: cool it down and stop preferring it. */
  failed(i: number): void {
    const n = ++this.#failures[i]!;
    this.#until[i] = this.now() + Math.min(COOL_DOWN.maxMs, COOL_DOWN.firstMs * 2 ** Math.min(n - 1, 16));
    if (this.#preferred === i) this.#preferred = (i + 1) % this.count;
  }

  /** True while `i` is cooling down (tests, diagnostics). */
  coolingDown(i: number): boolean {
    return this.#until[i]! > this.now();
  }
}
