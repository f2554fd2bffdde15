/** One benchmark figure, as every bench module reports it and `bench/run.ts` prints it. */
export interface BenchResult {
  /** Stable id, e.g. `crypto.split.n5t3.ops`. */
  id: string;
  /** Human name for the table. */
  name: string;
  value: number;
  /** e.g. `ops/s`, `µs/op`. */
  unit: string;
  /** A reference figure to compare with, when there is one. */
  baseline?: number;
  /** value / baseline. */
  ratio?: number;
  note?: string;
}
