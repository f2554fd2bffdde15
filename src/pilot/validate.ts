/**
 * Client-side checks of command arguments, done before anything is sent. Messages follow
 * SPIKE's wording but never echo a value that could be a secret (a mistyped `key=value`
 * pair, an invalid secret path): they name the rule that was broken instead.
 */
import { PERMISSIONS, type Permission } from '../sdk/index.js';
import { PilotError, usageError } from './errors.js';

/** SPIKE's secret path characters. */
const PATH_CHARS = /^[a-zA-Z0-9._\-/()?+*|[\]{}\\]$/;
const MAX_PATH = 500;
/** SPIKE's key-name rule: 1–250 of letters, digits, `-`, `_`, space. */
const KEY_RE = /^[a-zA-Z0-9\-_ ]{1,250}$/;
/** Never a secret path (the gate namespace of policies). */
const RESERVED_PREFIX = 'spike/system';

/** The length and character rules shared by a path and a path prefix. */
function lengthOrCharProblem(p: string): string | undefined {
  if (p.length > MAX_PATH) return `it is longer than ${MAX_PATH} characters`;
  for (let i = 0; i < p.length; i++) {
    if (!PATH_CHARS.test(p[i]!)) {
      return `character ${i + 1} is not allowed (use ASCII letters, digits and . _ - / ( ) ? + * | [ ] { } \\)`;
    }
  }
  return undefined;
}

/** Which rule of the secret path grammar `p` breaks, or undefined when it is valid (never the value itself). */
export function secretPathProblem(p: string): string | undefined {
  if (p.length === 0) return 'it is empty';
  const chars = lengthOrCharProblem(p);
  if (chars !== undefined) return chars;
  if (p.startsWith('/')) return "it starts with '/'";
  if (p.endsWith('/')) return "it ends with '/'";
  const segs = p.split('/');
  if (segs.includes('')) return "it has an empty segment ('//')";
  if (segs.some((s) => s === '.' || s === '..')) return "it has a '.' or '..' segment";
  if (p === RESERVED_PREFIX || p.startsWith(`${RESERVED_PREFIX}/`)) return `${RESERVED_PREFIX} is reserved`;
  return undefined;
}

/**
 * SPIKE's path grammar plus D2: no empty or dot segments, no leading or trailing `/`, not
 * under `spike/system`. Throws `Error: Invalid secret path: <the rule it broke>.` (the
 * message names the rule, never the path).
 */
export function checkSecretPath(p: string): string {
  const problem = secretPathProblem(p);
  if (problem !== undefined) throw new PilotError(`Error: Invalid secret path: ${problem}.`, { code: 'pilot_invalid_path', usage: true });
  return p;
}

/**
 * A `secret list` prefix: any start of a path (`app/`, `app/d`), so only the length and
 * character rules apply. Throws `Error: Invalid secret path prefix: <the rule it broke>.`.
 */
export function checkPathPrefix(p: string): string {
  const problem = lengthOrCharProblem(p);
  if (problem !== undefined) throw new PilotError(`Error: Invalid secret path prefix: ${problem}.`, { code: 'pilot_invalid_path', usage: true });
  return p;
}

/**
 * `key=value` pairs (split at the first `=`) → a null-prototype map. Unlike SPIKE, a bad
 * pair stops the command (nothing is written) instead of being skipped; the message names
 * where the pair was (`argument 3`, or `--metadata` number 2 via `where`), never its text.
 */
export function parsePairs(pairs: readonly string[], where: (i: number) => string = (i) => `argument ${i + 2}`): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  pairs.forEach((pair, i) => {
    const eq = pair.indexOf('=');
    const pos = where(i);
    if (eq <= 0) throw usageError(`Error: Invalid key-value pair (${pos}): expected key=value.`);
    const key = pair.slice(0, eq);
    if (!KEY_RE.test(key)) {
      throw usageError(`Error: Invalid key name (${pos}): use 1-250 ASCII letters, digits, '-', '_' or spaces.`);
    }
    if (Object.prototype.hasOwnProperty.call(out, key)) throw usageError(`Error: Duplicate key (${pos}).`);
    Object.defineProperty(out, key, { value: pair.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  });
  return out;
}

/** A non-negative integer option (`--version`, `--cas`). */
export function parseNonNegInt(v: string, flag: string): number {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(v.trim())) throw usageError(`Error: Invalid ${flag}: expected an integer ≥ 0.`);
  return Number(v.trim());
}

/** A cipher envelope's version byte (`cipher decrypt|rewrap --version`): 0–255. */
export function parseVersionByte(v: string): number {
  if (!/^(0|[1-9][0-9]{0,2})$/.test(v.trim()) || Number(v.trim()) > 255) throw usageError('Error: Invalid --version, must be 0-255.');
  return Number(v.trim());
}

/** A positive integer option (`--max-versions`). */
export function parsePositiveInt(v: string, flag: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(v.trim())) throw usageError(`Error: Invalid ${flag}: expected an integer ≥ 1.`);
  return Number(v.trim());
}

/** `-v 1,2,0` → [1,2,0]. Each element an integer ≥ 0 (SPIKE's messages). */
export function parseVersionList(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const t = part.trim();
    if (/^-[0-9]+$/.test(t)) throw usageError('Error: Negative version number.');
    if (!/^(0|[1-9][0-9]{0,14})$/.test(t)) throw usageError('Error: Invalid version number.');
    out.push(Number(t));
  }
  return out;
}

/** SPIKE's `ValidatePermissions`: split on `,`, trim, drop empties, each known, non-empty. */
export function parsePermissions(v: string | readonly string[]): Permission[] {
  const parts = (typeof v === 'string' ? v.split(',') : v).map((p) => String(p).trim()).filter((p) => p !== '');
  for (const p of parts) {
    if (!(PERMISSIONS as readonly string[]).includes(p)) {
      throw usageError(`Error: invalid permission: '${p.replace(/[^a-zA-Z0-9_-]/g, '?').slice(0, 32)}'. valid permissions: 'read, write, list, execute, super'`);
    }
  }
  if (parts.length === 0) throw usageError("Error: no permissions given. valid permissions: 'read, write, list, execute, super'");
  return [...new Set(parts)] as Permission[];
}

/** SPIKE's policy-name rule: 1–250 of `[a-zA-Z0-9-_ ]`. */
export function checkPolicyName(n: string): string {
  if (!KEY_RE.test(n)) throw usageError("Error: Invalid policy name: use 1-250 ASCII letters, digits, '-', '_' or spaces.");
  return n;
}
