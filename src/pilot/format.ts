/**
 * One output rule for every command: `--format/-f human|json|yaml` (aliases
 * `h`, `plain`, `p`, "" → human; `j` → json; `y` → yaml) and the `--json` shorthand, on reads
 * and writes alike. JSON is indented by two spaces; YAML via the `yaml` package. A write
 * prints one success line `OK: <what happened>.` in human form, or a small object
 * (`{"ok":true,…}`) in json/yaml. Every time shown is RFC 3339 in UTC, to the second
 * (`2026-07-25T17:00:00Z`). Everything here returns text ending in a newline (or the empty
 * string), to be written to stdout.
 *
 * Start-up time (issue 15): `yaml` is loaded on first use ({@link yaml}), so a command that
 * prints human or JSON output never evaluates it.
 */
import { createRequire } from 'node:module';
import { Option, type Command } from 'commander';
import type * as Yaml from 'yaml';
import { usageError } from './errors.js';
import { escapeJsonControls } from './terminal-text.js';

let yamlModule: typeof Yaml | undefined;

/**
 * The `yaml` package, loaded on first use. In the CLI bundle `require` is the bundle's own and
 * the bundler resolves this call to its copy of `yaml` (evaluated only now); run from the
 * compiled ES modules (no `require`), Node loads the package.
 */
export function yaml(): typeof Yaml {
  yamlModule ??= (typeof require === 'function' ? require('yaml') : createRequire(import.meta.url)('yaml')) as typeof Yaml;
  return yamlModule;
}

export type OutputFormat = 'human' | 'json' | 'yaml';

/** The options every command gets (commander's camel-cased names). */
export interface FormatOpts {
  format?: string;
  json?: boolean;
}

/**
 * Adds `-f, --format` and `--json`. Commands whose `-f` already means something else
 * (`cipher … -f <file>`) get the long form only.
 */
export function addFormatOptions(c: Command): Command {
  const shortTaken = c.options.some((o) => o.short === '-f');
  return c
    .addOption(new Option(`${shortTaken ? '' : '-f, '}--format <format>`, 'output format: human, json or yaml'))
    .option('--json', 'output JSON (same as --format json)');
}

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

/** Indented JSON; control characters JSON.stringify leaves raw are escaped too (terminal-text.ts). */
export function toJson(v: unknown): string {
  return `${escapeJsonControls(JSON.stringify(v, null, 2))}\n`;
}

export function toYaml(v: unknown): string {
  if (Array.isArray(v) && v.length === 0) return '[]\n';
  return yaml().stringify(v);
}

/** Renders `v` as json/yaml, or calls `human()` for the human form. */
export function render(format: OutputFormat, v: unknown, human: () => string): string {
  if (format === 'json') return toJson(v);
  if (format === 'yaml') return toYaml(v);
  return human();
}

/** Any RFC 3339 time (any offset, any fraction) → RFC 3339 in UTC to the second, `2006-01-02T15:04:05Z`. Unparsable → as given. */
export function formatTime(rfc3339: string): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** {@link formatTime} that keeps `null` (a version never deleted). */
export function formatTimeOrNull(t: string | null): string | null {
  return t === null ? null : formatTime(t);
}

/**
 * The output of a successful write: `OK: <line>.` in human form, or `{ok: true, ...fields}`
 * as json/yaml. `line` names what happened ("wrote secret a/b").
 */
export function success(format: OutputFormat, line: string, fields: Record<string, unknown> = {}): string {
  return render(format, { ok: true, ...fields }, () => `OK: ${line}.\n`);
}
