/**
 * Input grammars for API fields (D2): secret paths, key and policy names, policy patterns and
 * restore share ids. Servers run them in request schemas and the policy engine; clients may
 * run the same checks before sending.
 *
 * Secret paths: SPIKE's character set `[a-zA-Z0-9._\-/()?+*|[\]{}\\]` and 1..500 characters,
 * and, per D2, no empty segment, no `.`/`..` segment, no leading or trailing `/` (control
 * characters are outside the set anyway). The reserved gate namespace `spike/system` (and
 * everything under it) is never a secret path (POL-18). Nothing is ever normalised: the
 * string that is validated is the string that is authorised and stored.
 *
 * Every check is a linear scan or a fixed RE2 program on re2js (no V8 backtracking regex on
 * input). Failures are 400 `api_bad_request` {@link ApiError}s with a fixed exposed message.
 *
 * re2js (a large library) is loaded on the first pattern check, not at import: a Keeper
 * imports this module for its wire types and never checks a pattern (issue 17: an idle
 * Keeper loads only what it uses; about 4 MiB of its RSS).
 */
import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import { ApiError, REASON, badRequest } from './errors.js';
import { MAX_SHARE_ID } from '../crypto/curve-free.js';
import { MAX_NAME_LENGTH, MAX_PATH_LENGTH, MAX_PATH_PATTERN_LENGTH, MAX_SPIFFEID_PATTERN_LENGTH } from './limits.js';

/** Prefix of SPIKE's gate paths; never a secret path. */
export const RESERVED_PATH_PREFIX = 'spike/system';

function table(chars: string, ranges: Array<[string, string]> = []): Uint8Array {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  for (const [a, b] of ranges) for (let c = a.charCodeAt(0); c <= b.charCodeAt(0); c++) t[c] = 1;
  return t;
}
const ALNUM: Array<[string, string]> = [['a', 'z'], ['A', 'Z'], ['0', '9']];
const PATH_CHARS = table('._-/()?+*|[]{}\\', ALNUM);
const NAME_CHARS = table('-_ ', ALNUM);
const PATH_PATTERN_CHARS = table('._-/^$()?+*|[]{}\\', ALNUM);

function allIn(s: string, t: Uint8Array): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || t[c] !== 1) return false;
  }
  return true;
}

const invalidPath = (): ApiError => badRequest(REASON.invalidPath, 'invalid path');

/** True when `p` is a valid secret path (see module doc). */
export function isValidSecretPath(p: string): boolean {
  if (typeof p !== 'string' || p.length < 1 || p.length > MAX_PATH_LENGTH) return false;
  if (!allIn(p, PATH_CHARS)) return false;
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p.charCodeAt(i) !== 0x2f) continue;
    const len = i - start;
    if (len === 0) return false; // leading, trailing or doubled '/'
    if (len === 1 && p.charCodeAt(start) === 0x2e) return false;
    if (len === 2 && p.charCodeAt(start) === 0x2e && p.charCodeAt(start + 1) === 0x2e) return false;
    start = i + 1;
  }
  if (p === RESERVED_PATH_PREFIX || p.startsWith(RESERVED_PATH_PREFIX + '/')) return false;
  return true;
}

/** Throws 400 `invalid_path` unless `p` is a valid secret path. */
export function validateSecretPath(p: string): void {
  if (!isValidSecretPath(p)) throw invalidPath();
}

/** Secret value key names and policy names: 1..250 of `[a-zA-Z0-9-_ ]`. */
export function isValidName(n: string): boolean {
  return typeof n === 'string' && n.length >= 1 && n.length <= MAX_NAME_LENGTH && allIn(n, NAME_CHARS);
}

export function validateKeyName(n: string): void {
  if (!isValidName(n)) throw badRequest(REASON.invalidName, 'invalid key name');
}

export function validatePolicyName(n: string): void {
  if (!isValidName(n)) throw badRequest(REASON.invalidName, 'invalid policy name');
}

// SPIKE's SPIFFE-ID pattern rule (SDK validation.go), run on re2js as a full match. Compiled on
// first use: most processes importing this module (every CLI call) never check a pattern.
const requireCjs = createRequire(import.meta.url);
let spiffeIdPatternRule: RE2JS | undefined;
const SPIFFEID_PATTERN_RULE = (): RE2JS =>
  (spiffeIdPatternRule ??= (requireCjs('re2js') as typeof import('re2js')).RE2JS.compile(
    '\\^?spiffe://[\\\\a-zA-Z0-9.\\-*()+?\\[\\]]+(/[\\\\/a-zA-Z0-9._\\-*()+?\\[\\]]+)*\\$?',
  ));

/** SPIKE's syntactic rule for `spiffeidPattern` (before compiling it). */
export function isValidSpiffeIdPattern(p: string): boolean {
  return (
    typeof p === 'string' &&
    p.length > 0 &&
    p.length <= MAX_SPIFFEID_PATTERN_LENGTH &&
    SPIFFEID_PATTERN_RULE().matches(p)
  );
}

export function validateSpiffeIdPattern(p: string): void {
  if (!isValidSpiffeIdPattern(p)) throw badRequest(REASON.invalidPattern, 'invalid SPIFFE ID pattern');
}

/** SPIKE's syntactic rule for `pathPattern`: 1..500 of `[a-zA-Z0-9._\-/^$()?+*|[\]{}\\]`. */
export function isValidPathPattern(p: string): boolean {
  return typeof p === 'string' && p.length >= 1 && p.length <= MAX_PATH_PATTERN_LENGTH && allIn(p, PATH_PATTERN_CHARS);
}

export function validatePathPattern(p: string): void {
  if (!isValidPathPattern(p)) throw badRequest(REASON.invalidPattern, 'invalid path pattern');
}

/** Restore share id: 1..maxShareCount (the sharing's share count; at most `MAX_SHARE_ID`). */
export function validateRestoreId(id: number, maxShareCount = MAX_SHARE_ID): void {
  if (!Number.isSafeInteger(id) || id < 1 || id > maxShareCount) {
    throw badRequest('invalid_share_id', 'invalid share id');
  }
}
