/**
 * Structured JSON-lines logger (pino) with a redaction list (decision D16).
 *
 * Values, keys, shares and request bodies must never be passed to a logger; the
 * redaction paths below are a second line of defence for field names that could
 * carry them by mistake.
 *
 * Redaction looks at what such a field holds, not only at its name: key material, shares
 * and values are strings, buffers, arrays or objects here, never a plain number or
 * boolean, so `{"shares": 3}` (a count) is logged as is while `{"shares": [..]}`, a
 * Uint8Array, a string or an object under the same name is `[redacted]`.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED_KEYS = [
  'value', 'values', 'data', 'secret', 'secrets', 'shard', 'shards', 'share', 'shares',
  'key', 'rootKey', 'plaintext', 'ciphertext', 'nonce', 'body', 'password', 'token',
  'privateKey', 'path', 'paths',
] as const;

const redactPaths = REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]);

const CENSOR = '[redacted]';

/** Keeps plain numbers, booleans and null (counts, flags); hides everything else. */
export function censorByContent(value: unknown): unknown {
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

export function createLogger(opts: LoggerOptions): Logger {
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
