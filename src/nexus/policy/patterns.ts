/**
 * Policy patterns (D3): RE2 on re2js (linear time, never V8's backtracking engine), always
 * matched as a **full match** (`RE2JS#matches`, the same as `^(?:p)$`), not SPIKE's substring
 * search. Full match anchors both ends structurally, so SPIKE's textual "precise pattern" tests
 * hold for every pattern by construction (POL-04: `^a|b$` means exactly `a` or `b`).
 *
 * Cost (POL-24): a {@link PatternCache} compiles each distinct pattern string once, lazily on
 * first use, shared across policy versions and loads (reference-counted by the policies that
 * use it); patterns that are plain literals ({@link literalOf}) are compared as strings with
 * no regex at all, and {@link requiredPrefixOf} lets the engine skip identity patterns a
 * caller cannot match without compiling or running them.
 */
import type { RE2JS } from 're2js';
import { compileBounded, isAsciiPunct, literalOf, MAX_PATTERN_PROGRAM, META, programSize } from '../../patterns/index.js';
import { warmMatcherOnce } from './warm.js';

export { compileBounded, literalOf, MAX_PATTERN_PROGRAM, programSize };

/**
 * A string that every full match of `p` must start with ('' when none can be derived). Used to
 * skip identity patterns that cannot match a caller without compiling or running them.
 * Conservative: stops at the first metacharacter, drops a literal that a quantifier follows,
 * and gives '' when the pattern has a top-level alternation.
 */
export function requiredPrefixOf(p: string): string {
  // Quoted text (`\Q…\E`) may hide a `(` or `|`: no prefix rather than a second parser.
  if (p.includes('\\Q')) return '';
  // A top-level `|` anywhere → no common prefix.
  let depth = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      i = classEnd(p, i);
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return '';
  }
  const quantified = (q: string | undefined): boolean => q === '*' || q === '+' || q === '?' || q === '{';
  let out = '';
  for (let i = p.startsWith('^') ? 1 : 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '\\') {
      const next = p[i + 1];
      if (next === undefined || !isAsciiPunct(next.charCodeAt(0)) || quantified(p[i + 2])) break;
      out += next;
      i++;
      continue;
    }
    if (META.includes(c)) break;
    const code = c.charCodeAt(0);
    if (code < 0x20 || code > 0x7e || quantified(p[i + 1])) break;
    out += c;
  }
  return out;
}

/**
 * The index of the `]` that closes the character class opening at `p[open]` (RE2 syntax: a `]`
 * first in the class, after an optional `^`, is a literal; `[:name:]` and escapes are skipped).
 */
function classEnd(p: string, open: number): number {
  let i = open + 1;
  if (p[i] === '^') i++;
  if (p[i] === ']') i++;
  for (; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '[' && p[i + 1] === ':') {
      const close = p.indexOf(':]', i + 2);
      if (close >= 0) i = close + 1;
    } else if (p[i] === ']') return i;
  }
  return p.length;
}

/** Something that decides whether a whole string matches a pattern. */
export interface Matcher {
  /** The one string this pattern matches, or null when it is not a literal. */
  readonly literal: string | null;
  /** Every match starts with this ('' = unknown). */
  readonly prefix: string;
  /**
   * The worst-case work of one match per character of input: the program size (0 for a
   * literal, or for a pattern that matches nothing). Compiles the pattern on first use.
   */
  cost(): number;
  matches(s: string): boolean;
}

/**
 * Full match without re2js's lazy DFA: one-pass programs run one-pass, others on the bounded
 * backtracker or the NFA, each O(program × input) with no state kept between calls. The DFA is
 * faster on the patterns it suits, but patterns can be written whose DFA needs a new state at
 * every character (`.*a.{200}`: 2^200 states): then it costs more per character than the NFA
 * and keeps up to 8 MiB of states per pattern (100 such patterns of 250 instructions: ~500 ms
 * of CPU per 500-character path and an RSS past 1 GiB, measured; without the DFA ~20 ms and
 * flat). Asking for the match position skips the DFA.
 */
function fullMatch(re: RE2JS, s: string): boolean {
  return re.matcher(s).matches();
}

/**
 * Compiled-pattern cache shared across policy versions: one compile per distinct pattern.
 * Reference-counted by the policies that use each pattern, so memory follows the live policy
 * set whether it changes by a full load or one policy at a time.
 */
export class PatternCache {
  private readonly map = new Map<string, { matcher: Matcher; refs: number }>();

  /** `onCompileError` runs once per stored pattern that re2js cannot compile (it then matches nothing). */
  constructor(private readonly onCompileError: () => void) {}

  /** The matcher of `pattern`, counted as used once more until {@link release}. */
  acquire(pattern: string): Matcher {
    let slot = this.map.get(pattern);
    if (slot === undefined) {
      slot = { matcher: this.make(pattern), refs: 0 };
      this.map.set(pattern, slot);
    }
    slot.refs++;
    return slot.matcher;
  }

  /** One use of `pattern` fewer; the compiled form is dropped with its last use. */
  release(pattern: string): void {
    const slot = this.map.get(pattern);
    if (slot !== undefined && --slot.refs <= 0) this.map.delete(pattern);
  }

  /** Distinct patterns held. */
  get size(): number {
    return this.map.size;
  }

  private make(pattern: string): Matcher {
    const literal = literalOf(pattern);
    if (literal !== null) return { literal, prefix: literal, cost: () => 0, matches: (s) => s === literal };
    let re: RE2JS | null | undefined; // undefined = not compiled yet; null = does not compile
    let size = 0;
    const onError = this.onCompileError;
    const compiled = (): RE2JS | null => {
      if (re === undefined) {
        const c = compileBounded(pattern);
        re = typeof c === 'string' ? null : c;
        if (re === null) onError();
        else {
          size = programSize(re) ?? MAX_PATTERN_PROGRAM;
          warmMatcherOnce(); // the first request to run it finds re2js's code optimised (warm.ts)
        }
      }
      return re;
    };
    return {
      literal: null,
      prefix: requiredPrefixOf(pattern),
      cost: () => (compiled() === null ? 0 : size),
      matches(s: string): boolean {
        const r = compiled();
        return r !== null && fullMatch(r, s);
      },
    };
  }
}
