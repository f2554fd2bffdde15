/**
 * Micro-benchmarks of the crypto core (issue 3): Shamir split (with Feldman commitments),
 * combine, and Feldman verification of one share, for n = 5, t = 3. Each operation runs
 * for a fixed time budget after a warm-up; results are ops/s and µs/op.
 */
import { performance } from 'node:perf_hooks';
import { RootKey, combineShares, splitSecret } from '../src/crypto/index.js';
import type { BenchResult } from './types.js';

const N = 5;
const T = 3;

function measure(fn: () => void, budgetMs: number): { ops: number; usPerOp: number } {
  for (let i = 0; i < 20; i++) fn(); // warm-up
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 10; i++) fn();
    iterations += 10;
    elapsed = performance.now() - start;
  }
  return { ops: (iterations * 1000) / elapsed, usPerOp: (elapsed * 1000) / iterations };
}

export async function benchCrypto(opts: { budgetMs?: number } = {}): Promise<BenchResult[]> {
  const budgetMs = opts.budgetMs ?? 1000;
  const key = RootKey.generate();
  const { shares, commitments } = splitSecret(key, T, N);
  const subset = [shares[4]!, shares[0]!, shares[2]!];
  let i = 0;
  const cases: { op: string; fn: () => void; note: string }[] = [
    { op: 'split', fn: () => void splitSecret(key, T, N), note: 'random coefficients + t commitments (t scalar mults)' },
    { op: 'combine', fn: () => combineShares(subset, T).destroy(), note: 'Lagrange at 0 over t shares' },
    { op: 'verify', fn: () => void commitments.verifyShare(shares[i++ % N]!), note: 'one share against t commitments' },
  ];
  const out: BenchResult[] = [];
  for (const c of cases) {
    const m = measure(c.fn, budgetMs);
    out.push({ id: `crypto.${c.op}.n${N}t${T}.ops`, name: `shamir ${c.op} (n=${N}, t=${T})`, value: m.ops, unit: 'ops/s', note: c.note });
    out.push({ id: `crypto.${c.op}.n${N}t${T}.us`, name: `shamir ${c.op} (n=${N}, t=${T})`, value: m.usPerOp, unit: 'µs/op' });
  }
  key.destroy();
  return out;
}
