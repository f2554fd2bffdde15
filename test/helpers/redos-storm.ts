/**
 * FI-13's ReDoS storm material, shared by the engine-level test
 * (src/nexus/policy/redos-storm.test.ts) and the black-box fault scenario
 * (test/faults/fi13-redos-storm.ts): path patterns as costly for re2js as the write-time bound
 * allows, and long deterministic paths none of them allows.
 */
import { RE2JS } from 're2js';
import { MAX_PATTERN_PROGRAM, programSize } from '../../src/nexus/policy/patterns.js';

/** The path length limit. */
export const PATH_LENGTH = 500;

/** Shapes that are costly for re2js: a new DFA state per character, or many live NFA threads. */
const SHAPES: Array<(n: number) => string> = [
  (n) => `.*a.{${n}}`, (n) => `(.*a.{${n}})*`, (n) => `(.*a){${n}}`, (n) => `(.?){${n}}`,
  (n) => `([a-z0-9/]?[a-z]?){${n}}`, (n) => `(.*[ab].*c){${n}}`, (n) => `(.*a|.*b/){${n}}`,
];

/** The largest instance of `shape` (made distinct by `i`) within the write-time bound. */
function nearCap(shape: (n: number) => string, i: number): string {
  const size = (n: number): number => {
    try {
      return programSize(RE2JS.compile(`(${i})?${shape(n)}`)) ?? Infinity;
    } catch {
      return Infinity;
    }
  };
  let lo = 1;
  let hi = 1000;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (size(mid) <= MAX_PATTERN_PROGRAM) lo = mid;
    else hi = mid - 1;
  }
  return `(${i})?${shape(lo)}`;
}

/** Deterministic 500-character paths over `ab/c` (distinct, so no state of a previous match helps). */
export function stormPaths(n: number, length = PATH_LENGTH): string[] {
  const out: string[] = [];
  let x = 12345;
  for (let k = 0; k < n; k++) {
    let s = '';
    for (let j = 0; j < length - 1; j++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += 'ab/c'[(x >>> 16) % 4];
    }
    out.push(`${s}Z`);
  }
  return out;
}

/** `n` distinct near-bound patterns, the shapes in turn. */
export function stormPatterns(n: number): string[] {
  return Array.from({ length: n }, (_, i) => nearCap(SHAPES[i % SHAPES.length]!, i));
}
