/**
 * What a fault scenario's load counts (test/faults/load.ts `MixLoad`): latencies, statuses,
 * connection failures, 5xx codes, retries, lost acks and integrity errors; and the text of
 * the scenario's notes made from them.
 */

export interface MixStats {
  get: number[];
  put: number[];
  /** The same, for requests started 10 s or more after `start()` (past the connection burst). */
  getSteady: number[];
  putSteady: number[];
  /** HTTP status → count (first attempts). */
  status: Map<number, number>;
  /** Connection-level failures (no HTTP status), first attempts. */
  netErrors: Map<string, number>;
  fiveXX: number;
  /** 5xx answers by status and error code. */
  fiveXXCodes: Map<string, number>;
  /** Seconds since start of the 5xx answers. */
  fiveXXSeconds: Set<number>;
  lapsed401: number;
  retriesOk: number;
  retriesFailed: Map<string, number>;
  integrityErrors: number;
  lostAcks: number;
  acks: number;
  /** Seconds since `start()` of every answer slower than 200 ms (where the tail sits in time). */
  slowAt: number[];
}

export function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export function newStats(): MixStats {
  return { get: [], put: [], getSteady: [], putSteady: [], status: new Map(), netErrors: new Map(), fiveXX: 0, fiveXXCodes: new Map(), fiveXXSeconds: new Set(), lapsed401: 0, retriesOk: 0, retriesFailed: new Map(), integrityErrors: 0, lostAcks: 0, acks: 0, slowAt: [] };
}

/** `slowAt` as "second: count" runs, at most 20 entries. */
export function slowText(slowAt: readonly number[]): string {
  const m = new Map<number, number>();
  for (const t of slowAt) m.set(t, (m.get(t) ?? 0) + 1);
  const all = [...m].sort((a, b) => a[0] - b[0]);
  const top = [...all].sort((a, b) => b[1] - a[1]).slice(0, 20).sort((a, b) => a[0] - b[0]);
  return `${slowAt.length} answers > 200 ms in ${all.length} distinct seconds; busiest: ${top.map(([t, n]) => `${t}s ×${n}`).join(', ') || 'none'}`;
}

export function mapText(m: Map<string | number, number>): string {
  return [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ') || 'none';
}
