/**
 * Client-side checks of command arguments, done before anything is sent. Messages follow
 * SPIKE's wording but never echo a value that could be a secret (a mistyped `key=value`
 * pair, a secret path).
 */
import { PERMISSIONS, type Permission } from '../sdk/index.js';
import { PilotError, usageError } from './errors.js';

/** SPIKE's secret path characters. */
const PATH_CHARS = /^[a-zA-Z0-9._\-/()?+*|[\]{}\\]+$/;
const MAX_PATH = 500;
/** SPIKE's key-name rule: 1–250 of letters, digits, `-`, `_`, space. */
const KEY_RE = /^[a-zA-Z0-9\-_ ]{1,250}$/;

/**
 * SPIKE's path grammar plus D2: no empty or dot segments, no leading or trailing `/`.
 * Throws `Error: Invalid secret path.`.
 */
export function checkSecretPath(p: string): string {
  const bad = (): never => {
    throw new PilotError('Error: Invalid secret path.', { code: 'pilot_invalid_path' });
  };
  if (p.length === 0 || p.length > MAX_PATH || !PATH_CHARS.test(p)) bad();
  if (p.startsWith('/') || p.endsWith('/')) bad();
  for (const seg of p.split('/')) if (seg === '' || seg === '.' || seg === '..') bad();
  return p;
}

/**
 * `key=value` pairs (split at the first `=`) → a null-prototype map. Unlike SPIKE, a bad
 * pair stops the command (nothing is written) instead of being skipped; the message names
 * the argument position, never its text.
 */
export function parsePairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  pairs.forEach((pair, i) => {
    const eq = pair.indexOf('=');
    const pos = i + 2; // argument position after <path>
    if (eq <= 0) throw usageError(`Error: Invalid key-value pair (argument ${pos}): expected key=value.`);
    const key = pair.slice(0, eq);
    if (!KEY_RE.test(key)) {
      throw usageError(`Error: Invalid key name (argument ${pos}): use 1-250 letters, digits, '-', '_' or spaces.`);
    }
    if (Object.prototype.hasOwnProperty.call(out, key)) throw usageError(`Error: Duplicate key (argument ${pos}).`);
    Object.defineProperty(out, key, { value: pair.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  });
  return out;
}

/** A non-negative integer option (`--version`, `--cas`). */
export function parseNonNegInt(v: string, flag: string): number {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(v.trim())) throw usageError(`Error: Invalid ${flag}: expected an integer ≥ 0.`);
  return Number(v.trim());
}

/** A positive integer option (`--max-versions`). */
export function parsePositiveInt(v: string, flag: string): number {
  const n = parseNonNegInt(v, flag);
  if (n === 0) throw usageError(`Error: Invalid ${flag}: expected an integer ≥ 1.`);
  return n;
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
  if (!KEY_RE.test(n)) throw usageError("Error: Invalid policy name: use 1-250 letters, digits, '-', '_' or spaces.");
  return n;
}
