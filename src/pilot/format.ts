/**
 * Output formats of read commands: `--format/-f human|json|yaml` (aliases
 * `h`, `plain`, `p`, "" → human; `j` → json; `y` → yaml) and our `--json` shorthand. JSON is
 * indented by two spaces; YAML via the `yaml` package. Everything here returns text ending
 * in a newline (or the empty string), to be written to stdout.
 */
import YAML from 'yaml';
import { usageError } from './errors.js';

type OutputFormat = 'human' | 'json' | 'yaml';

/** Resolves `--format` and `--json`. An unknown format is a usage error (exit 2). */
export function parseFormat(format: string | undefined, json = false): OutputFormat {
  if (json) {
    if (format !== undefined && parseFormat(format) !== 'json') throw usageError('Error: --json cannot be combined with another --format.');
    return 'json';
  }
  switch ((format ?? '').trim().toLowerCase()) {
    case '':
    case 'human':
    case 'h':
    case 'plain':
    case 'p':
      return 'human';
    case 'json':
    case 'j':
      return 'json';
    case 'yaml':
    case 'y':
      return 'yaml';
    default:
      throw usageError(`Error: invalid format '${printable(format ?? '')}'. Valid formats are: human, h, plain, p, json, j, yaml, y.`);
  }
}

/** Makes a user-supplied token safe to show on one line. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 64);
}

export function toJson(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

export function toYaml(v: unknown): string {
  if (Array.isArray(v) && v.length === 0) return '[]\n';
  return YAML.stringify(v);
}

/** Renders `v` as json/yaml, or calls `human()` for the human form. */
export function render(format: OutputFormat, v: unknown, human: () => string): string {
  if (format === 'json') return toJson(v);
  if (format === 'yaml') return toYaml(v);
  return human();
}

/** RFC 3339 → `2006-01-02 15:04:05 UTC` (Go's `2006-01-02 15:04:05 MST`, shown in UTC). Unparsable → as given. */
export function formatTime(rfc3339: string): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}
