/**
 * Secret values from a file or stdin, so that secrets need not be on the command line
 * (where `ps` and the shell history see them). In `spike secret put <path> key=value…` a value is:
 *
 * - `@<file>`: the file's bytes, exactly (a trailing newline is kept, as with Vault's
 *   `key=@file` and `kubectl create secret --from-file`); `<file>` is relative to the working
 *   directory;
 * - `-`: everything on stdin, exactly (at most one `-` per call); when stdin is a terminal, one
 *   line typed without echo (hidden-input.ts: Enter ends it and is not part of the value; a
 *   multi-line paste is refused — multi-line values come from a file or a pipe). An empty stdin
 *   is refused rather than stored as an empty value (a closed stdin reads as empty: Node gives
 *   the process /dev/null in its place), and so is a directory, which Node reads as empty too;
 *   an empty value is written `key=`;
 * - `@@…`: the literal text `@…` (one `@` is dropped), and `@-`: the literal text `-`;
 * - anything else: the text itself.
 *
 * Values are text on the wire, so file and stdin bytes must be UTF-8 (binary data: encode
 * it first, e.g. base64); at most {@link MAX_VALUE_BYTES} bytes each. Read buffers are zeroed
 * after decoding. Errors name the key and the file as the user typed it, never the content.
 */
import path from 'node:path';
import type { PilotIo } from './context.js';
import { PilotError, usageError } from './errors.js';
import { readHiddenLine } from './hidden-input.js';
import { readSmallFile, SmallFileError } from './small-file.js';

/** Nexus accepts request bodies up to 1 MiB by default: a bigger value could never be stored. */
export const MAX_VALUE_BYTES = 1 << 20;

/** Where one value comes from. */
export type ValueSource = { kind: 'literal'; text: string } | { kind: 'file'; file: string } | { kind: 'stdin' };

/** Classifies a raw value (see the module comment). */
export function valueSource(raw: string): ValueSource {
  if (raw === '-') return { kind: 'stdin' };
  if (!raw.startsWith('@')) return { kind: 'literal', text: raw };
  const rest = raw.slice(1);
  if (rest.startsWith('@') || rest === '-') return { kind: 'literal', text: rest };
  return { kind: 'file', file: rest };
}

function fail(line: string): never {
  throw new PilotError(line, { code: 'pilot_value_source' });
}

function decodeUtf8(buf: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return fail(`Error: ${what} is not UTF-8 text; secret values are text (encode binary data first, e.g. with base64).`);
  } finally {
    buf.fill(0);
  }
}

function readValueFile(io: PilotIo, file: string, what: string): string {
  const shown = JSON.stringify(file);
  let bytes: Buffer;
  try {
    bytes = readSmallFile(path.resolve(io.cwd, file), MAX_VALUE_BYTES);
  } catch (e) {
    if (!(e instanceof SmallFileError)) throw e;
    if (e.failure === 'open') return fail(`Error: Cannot read the file ${shown} for ${what}${e.errno === 'ENOENT' ? ': no such file' : e.errno ? ` (${e.errno})` : ''}.`);
    return fail(e.failure === 'not_regular' ? `Error: The file ${shown} for ${what} is not a regular file.` : `Error: The file ${shown} for ${what} is larger than 1 MiB.`);
  }
  return decodeUtf8(bytes, `The file ${shown} for ${what}`);
}

async function readStdin(io: PilotIo, key: string): Promise<string> {
  const what = `key '${key}'`;
  const empty = (): never => fail(`Error: stdin gave no value for ${what}; for an empty value write '${key}=' instead of '${key}=-'.`);
  if (io.stdinIsDirectory?.() === true) return fail(`Error: stdin for ${what} is a directory, not a value.`);
  if (io.stdin.isTTY && io.stdin.setRawMode) {
    const typed = await readHiddenLine(io, {
      prompt: `Value for ${what} (hidden; Enter ends it): `,
      max: MAX_VALUE_BYTES,
      tooLarge: new PilotError(`Error: The value typed for ${what} is larger than 1 MiB.`, { code: 'pilot_value_source' }),
      multiLine: new PilotError(`Error: More than one line was typed or pasted for ${what}; a terminal gives one line (use '${key}=@file' or a pipe for more).`, { code: 'pilot_value_source' }),
    });
    if (typed.length === 0) return empty();
    return decodeUtf8(typed, `The value typed for ${what}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of io.stdin) {
      const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      chunks.push(b);
      n += b.length;
      if (n > MAX_VALUE_BYTES) fail(`Error: stdin for ${what} is larger than 1 MiB.`);
    }
    if (n === 0) return empty();
    const value = decodeUtf8(Buffer.concat(chunks), `stdin for ${what}`);
    if (value === '\n' || value === '\r\n') {
      // e.g. `echo "$UNSET" | spike secret put p k=-`: stored as given, but said out loud.
      io.stderr.write(`Warning: stdin for ${what} was only a line ending; it is stored as such (use set -o pipefail and printf %s to pass values).\n`);
    }
    return value;
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/**
 * Replaces `@file`, `-`, `@@…` and `@-` values of `pairs` (parsed `key → raw value`) by what
 * they stand for (key names are validated already, so messages may name them). More than
 * one `-` is a usage error, found before anything is read.
 */
export async function resolveValues(io: PilotIo, pairs: Record<string, string>): Promise<Record<string, string>> {
  const keys = Object.keys(pairs);
  const sources = keys.map((k) => valueSource(pairs[k]!));
  const stdinCount = sources.filter((s) => s.kind === 'stdin').length;
  if (stdinCount > 1) throw usageError('Error: Only one value can come from stdin (key=-) per call.');
  for (const [i, s] of sources.entries()) {
    if (s.kind === 'file' && s.file === '') throw usageError(`Error: Missing file name after '@' for key '${keys[i]!}'; write @@ for a literal '@'.`);
  }
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [i, k] of keys.entries()) {
    const s = sources[i]!;
    const what = `key '${k}'`;
    const v = s.kind === 'literal' ? s.text : s.kind === 'file' ? readValueFile(io, s.file, what) : await readStdin(io, k);
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
