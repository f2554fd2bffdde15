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
import { RE2JS } from 're2js';

function isAsciiPunct(c: number): boolean {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/** RE2 metacharacters outside a `\` escape. */
const META = '.[]{}()*+?|^$';

/**
 * If `p` (as a full-match RE2 pattern) matches exactly one string, return it; else null.
 * Recognised: an optional leading `^`, an optional trailing `$`, and in between characters that
 * are not RE2 metacharacters or are `\`-escaped ASCII punctuation.
 */
export function literalOf(p: string): string | null {
  let i = 0;
  let end = p.length;
  if (p.startsWith('^')) i = 1;
  // A trailing `$` is an anchor only if it is not escaped (count the backslashes before it).
  if (end > i && p.charCodeAt(end - 1) === 0x24) {
    let backslashes = 0;
    for (let k = end - 2; k >= i && p.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) end--;
  }
  let out = '';
  for (; i < end; i++) {
    const c = p[i] as string;
    if (c === '\\') {
      const next = p[i + 1];
      if (next === undefined || i + 1 >= end) return null;
      if (!isAsciiPunct(next.charCodeAt(0))) return null; // only escaped ASCII punctuation is literal
      out += next;
      i++;
      continue;
    }
    if (META.includes(c)) return null;
    const code = c.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) return null; // keep the fast path ASCII-only
    out += c;
  }
  return out;
}

/**
 * A string that every full match of `p` must start with ('' when none can be derived). Used to
 * skip identity patterns that cannot match a caller without compiling or running them.
 * Conservative: stops at the first metacharacter, drops a literal that a quantifier follows,
 * and gives '' when the pattern has a top-level alternation.
 */
export function requiredPrefixOf(p: string): string {
  // A top-level `|` anywhere → no common prefix.
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') depth++;
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
 * Largest compiled program (re2js instructions) a policy pattern may have (POL-05, FI-13,
 * ENV-09). Matching is linear, but linear in text length × program size: a 10-byte path
 * pattern `(.?){1000}` compiles to 4,002 instructions and took ~300 ms to match one
 * 500-character path. Refused at write time (400, as for what does not compile: D3); a stored
 * one over the bound matches nothing. 250 keeps one pattern on a 500-character path around a
 * millisecond at worst, and keeps what people write: `^tenants/[a-z0-9-]+/db/.*$` is 20,
 * `^secrets/team-[a-z0-9-]+/(db|cache)/.*$` 33, a path pattern with a dozen alternatives
 * 97, one with a UUID 51, `^spiffe://example\.org/ns/[a-z0-9-]+/sa/[a-z0-9-]+$` 36,
 * `[a-z0-9-]{200}` 201. Long counted repetitions are what it refuses (`[a-z0-9-]{300}`,
 * `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?` twice: write `+` instead).
 * Go's RE2 would accept such patterns. Literal patterns are exempt: they are compared as
 * strings. What many patterns may cost together in one decision is bounded by the engine
 * (`MAX_DECISION_WORK`, engine.ts).
 */
export const MAX_PATTERN_PROGRAM = 250;

/** The size of a compiled pattern's program, or undefined if this re2js does not expose it. */
export function programSize(re: RE2JS): number | undefined {
  const prog = (re as unknown as { re2Input?: { prog?: { inst?: unknown } } }).re2Input?.prog?.inst;
  return Array.isArray(prog) ? prog.length : undefined;
}

/** Compiles `pattern` within {@link MAX_PATTERN_PROGRAM}: the regex, or why not. */
export function compileBounded(pattern: string): RE2JS | 'not_compiled' | 'too_complex' {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch {
    return 'not_compiled';
  }
  // Literal patterns (a long exact SPIFFE ID, say) are matched by string comparison, never run.
  if (literalOf(pattern) !== null) return re;
  // A re2js without the program in view cannot be bounded; src/nexus/policy/patterns.test.ts
  // pins that this one exposes it, so an upgrade that hides it fails a test, not requests.
  return (programSize(re) ?? 0) > MAX_PATTERN_PROGRAM ? 'too_complex' : re;
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
        else size = programSize(re) ?? MAX_PATTERN_PROGRAM;
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
