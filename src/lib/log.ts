/**
 * Structured JSON-lines logger (pino) with a redaction list (decision D16).
 *
 * Values, keys, shares and request bodies must never be passed to a logger; the
 * redaction paths below are a second line of defence for field names that could
 * carry them by mistake.
 *
 * Redaction looks at what such a field holds, not only at its name: key material, shares
 * and values are strings, buffers, arrays or objects here, so `{"shares": 3}` (a count) is
 * logged as is while `{"shares": [..]}`, a Uint8Array, a string or an object under the same
 * name is `[redacted]`. Singular key-material names (`share`, `key`, `value`, …) are hidden
 * whatever they hold: a number there could be a byte of a key.
 *
 * pino is loaded on the first `createLogger` call, not at import: the CLI imports this module
 * on every run but creates a logger only when asked to log (start-up time).
 */
import { createRequire } from 'node:module';
import type * as Pino from 'pino';
import type { Logger, LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED_KEYS = [
  'value', 'values', 'data', 'secret', 'secrets', 'shard', 'shards', 'share', 'shares',
  'key', 'rootKey', 'plaintext', 'ciphertext', 'nonce', 'body', 'password', 'token',
  'privateKey', 'path', 'paths',
] as const;

const redactPaths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]);

const CENSOR = '[redacted]';

/** Names that hold key material or a secret when singular: hidden whatever they hold (a number could be a byte). */
const ALWAYS_HIDDEN = new Set<string>(['value', 'secret', 'shard', 'share', 'key', 'rootKey', 'plaintext', 'ciphertext', 'nonce', 'password', 'token', 'privateKey']);

/**
 * Keeps plain numbers, booleans and null (counts, flags) under the other names (`shares`,
 * `paths`, …); hides everything else.
 */
export function censorByContent(value: unknown, path: readonly string[] = []): unknown {
  const name = path[path.length - 1];
  if (name !== undefined && ALWAYS_HIDDEN.has(name)) return CENSOR;
  return typeof value === 'number' || typeof value === 'boolean' || value === null ? value : CENSOR;
}

/** SPIKE's log levels (SPIKE_SYSTEM_LOG_LEVEL); anything else → warn, as in SPIKE. */
export function parseLevel(raw: string | undefined): LevelWithSilent {
  switch ((raw ?? '').trim().toUpperCase()) {
    case 'DEBUG': return 'debug';
    case 'INFO': return 'info';
    case 'WARN': return 'warn';
    case 'ERROR': return 'error';
    case 'SILENT': return 'silent';
    default: return 'warn';
  }
}

interface LoggerOptions {
  component: string;
  level?: LevelWithSilent;
  destination?: NodeJS.WritableStream;
}

const requireCjs = createRequire(import.meta.url);
let pinoModule: typeof Pino | undefined;

export function createLogger(opts: LoggerOptions): Logger {
  pinoModule ??= requireCjs('pino') as typeof Pino;
  const { pino } = pinoModule;
  const level = opts.level ?? parseLevel(process.env['SPIKE_SYSTEM_LOG_LEVEL']);
  return pino(
    {
      level,
      base: { component: opts.component },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: censorByContent },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? process.stdout,
  );
}
