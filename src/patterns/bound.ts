/**
 * How big a policy pattern may be, in one place for Nexus (which refuses a bigger one, and
 * matches nothing with one it finds stored) and the CLI (which says so before sending): the
 * size of the compiled re2js program, and the literal patterns compared as strings instead.
 */
import type { RE2JS } from 're2js';
import { re2 } from './re2.js';

/** ASCII punctuation (what a backslash escape may make literal). */
export function isAsciiPunct(c: number): boolean {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/** RE2 metacharacters outside a `\` escape. */
export const META = '.[]{}()*+?|^$';

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
    re = re2().compile(pattern);
  } catch {
    return 'not_compiled';
  }
  // Literal patterns (a long exact SPIFFE ID, say) are matched by string comparison, never run.
  if (literalOf(pattern) !== null) return re;
  // A re2js without the program in view cannot be bounded; src/nexus/policy/patterns.test.ts
  // pins that this one exposes it, so an upgrade that hides it fails a test, not requests.
  return (programSize(re) ?? 0) > MAX_PATTERN_PROGRAM ? 'too_complex' : re;
}
