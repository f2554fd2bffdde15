/**
 * Client-side check of a policy's two patterns before anything is sent, so the user learns
 * which rule a pattern broke, or that it does not compile and where. Nexus runs the same
 * checks (the same grammar from `src/protocol`, the same re2js engine) and answers only a
 * fixed `api_bad_request`: it never echoes a pattern. Here the user's own pattern may be
 * quoted back to the user's terminal (the fragment re2js points at, made printable).
 */
import { compileBounded, MAX_PATTERN_PROGRAM, programSize, re2 } from '../patterns/index.js';
import { isValidPathPattern, isValidSpiffeIdPattern } from '../protocol/curve-free.js';
import { usageError } from './errors.js';

const MAX_PATH_PATTERN = 500;

/** Makes a fragment of user input safe to show on one line. */
function printable(s: string, max = 40): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

/** Why re2js refuses `pattern` ("missing closing ) at character 4: `abc(`"), or undefined when it compiles. */
export function compileProblem(pattern: string): string | undefined {
  try {
    re2().compile(pattern);
    return undefined;
  } catch (e) {
    const err = e as { error?: unknown; input?: unknown };
    const what = typeof err.error === 'string' && err.error !== '' ? err.error : 'syntax error';
    const input = typeof err.input === 'string' ? err.input : '';
    if (input === '') return what;
    // RE2 reports unbalanced parentheses with the whole pattern as the input: no position then.
    const at = what === 'missing closing )' || what === 'unexpected )' ? -1 : pattern.indexOf(input);
    return `${what}${at >= 0 ? ` at character ${at + 1}` : ''}: \`${printable(input)}\``;
  }
}

/** Which grammar rule a path pattern breaks, or undefined. */
function pathPatternRule(p: string): string | undefined {
  if (isValidPathPattern(p)) return undefined;
  if (p.length === 0) return 'it is empty';
  if (p.length > MAX_PATH_PATTERN) return `it is longer than ${MAX_PATH_PATTERN} characters`;
  for (let i = 0; i < p.length; i++) {
    if (!isValidPathPattern(p[i]!)) return `character ${i + 1} is not allowed (use letters, digits and . _ - / ^ $ ( ) ? + * | [ ] { } \\)`;
  }
  return 'it is not a valid path pattern';
}

/** Which grammar rule a SPIFFE ID pattern breaks, or undefined. */
function spiffeIdPatternRule(p: string): string | undefined {
  if (isValidSpiffeIdPattern(p)) return undefined;
  if (p.length === 0) return 'it is empty';
  if (!/^\^?spiffe:\/\//.test(p)) return "it must start with 'spiffe://' (or '^spiffe://')";
  return "it must be spiffe://<trust domain>[/<path>] using letters, digits and . - _ * ( ) + ? [ ] \\ (a final '$' is allowed)";
}

/**
 * Checks both patterns of a policy spec; throws a usage error naming the flag (or YAML key)
 * and the problem. `names` says how each pattern was given.
 */
export function checkPolicyPatterns(
  spec: { pathPattern: string; spiffeIdPattern: string },
  names: { path: string; spiffeId: string } = { path: '--path-pattern', spiffeId: '--spiffeid-pattern' },
): void {
  const checks: Array<[string, string, (p: string) => string | undefined]> = [
    [names.spiffeId, spec.spiffeIdPattern, spiffeIdPatternRule],
    [names.path, spec.pathPattern, pathPatternRule],
  ];
  for (const [name, pattern, rule] of checks) {
    const broken = rule(pattern);
    if (broken !== undefined) throw usageError(`Error: Invalid ${name}: ${broken}.`);
    const problem = compileProblem(pattern);
    if (problem !== undefined) throw usageError(`Error: Invalid ${name}: it does not compile (${problem}).`);
    if (compileBounded(pattern) === 'too_complex') {
      const size = programSize(re2().compile(pattern));
      throw usageError(`Error: Invalid ${name}: it is too complex (${size} regex instructions, at most ${MAX_PATTERN_PROGRAM}; `
        + 'write + or * instead of long counted repetitions such as {300}).');
    }
  }
}
