/**
 * Reading one recovery shard for `spike operator restore` / `verify-shard`.
 *
 * Sources: a file argument, or stdin — on a terminal a hidden prompt
 * (`Enter recovery shard: ` on stderr, no echo), otherwise at most 4096 bytes of piped input
 * (more is refused, OPR-15). Input is collected in Buffers that are zeroed after
 * parsing; it never becomes a JS string.
 *
 * Format (strict, OPR-10): exactly `spike:<id>:<64 lowercase hex>` with
 * `<id>` = `[1-9][0-9]{0,3}`, optionally followed by one `\n`. A missing or different prefix
 * (SPIKE ignores the prefix, gaps B16), uppercase hex, CR, a BOM, spaces, trailing bytes or
 * a bad id are refused before any network call, with a message that names the rule and
 * never the input. Decoding is done by `src/crypto/encoding.ts` `parseRecoveryFile`.
 */
import path from 'node:path';
import { parseRecoveryFile } from '../crypto/curve-free.js';
import type { Share } from '../sdk/index.js';
import { PilotError } from './errors.js';
import type { PilotIo } from './context.js';
import { readHiddenLine } from './hidden-input.js';
import { readSmallFile, SmallFileError } from './small-file.js';

export const MAX_SHARD_INPUT = 4096;
const HEX_LEN = 64;

function bad(why: string): never {
  throw new PilotError(`Error: Invalid recovery shard: ${why} (expected spike:<id>:<64 lowercase hex characters>).`, {
    code: 'pilot_invalid_shard',
  });
}

function isLowerHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

/**
 * Validates and decodes shard text. Does not wipe `input` (the caller does); the returned
 * share's value is a new buffer the caller wipes.
 */
export function parseShardText(input: Uint8Array): Share {
  let end = input.length;
  if (end > 0 && input[end - 1] === 0x0a) end--; // one trailing newline (echo … | spike)
  if (end === 0) bad('empty input');
  const prefix = [0x73, 0x70, 0x69, 0x6b, 0x65, 0x3a]; // "spike:"
  if (end < prefix.length || prefix.some((c, i) => input[i] !== c)) bad('it must start with "spike:"');
  let p = prefix.length;
  const idStart = p;
  while (p < end && input[p]! >= 0x30 && input[p]! <= 0x39) p++;
  const idLen = p - idStart;
  if (idLen === 0 || idLen > 4 || input[idStart] === 0x30) bad('the share id must be a number from 1 to 9999');
  if (p >= end || input[p] !== 0x3a) bad('the share id must be followed by ":"');
  p++;
  const hexLen = end - p;
  for (let i = p; i < end; i++) {
    if (!isLowerHex(input[i]!)) bad(hexLen === HEX_LEN ? 'the value must be lowercase hex' : 'the value must be exactly 64 lowercase hex characters');
  }
  if (hexLen !== HEX_LEN) bad('the value must be exactly 64 lowercase hex characters');
  try {
    return parseRecoveryFile(input.subarray(0, end));
  } catch {
    return bad('the share id is out of range');
  }
}

/** Reads up to `max` bytes; more than that is refused. The caller wipes the result. */
export async function readCapped(stream: NodeJS.ReadableStream, max = MAX_SHARD_INPUT): Promise<Buffer> {
  const buf = Buffer.alloc(max);
  let n = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (n + b.length > max) {
        if (typeof chunk !== 'string') b.fill(0);
        bad(`the input is larger than ${max} bytes`);
      }
      b.copy(buf, n);
      n += b.length;
      if (typeof chunk !== 'string') b.fill(0);
    }
    return Buffer.from(buf.subarray(0, n));
  } finally {
    buf.fill(0);
  }
}

/**
 * Reads a file argument (a regular file of ≤ 4096 bytes, no symlink following for the last
 * component; O_NONBLOCK so a FIFO is refused instead of blocking the open).
 */
export function readShardFile(io: Pick<PilotIo, 'cwd'>, file: string): Buffer {
  try {
    return readSmallFile(path.resolve(io.cwd, file), MAX_SHARD_INPUT, { noFollow: true });
  } catch (e) {
    if (!(e instanceof SmallFileError)) throw e;
    if (e.failure === 'open') throw new PilotError('Error: Cannot open the shard file (missing, unreadable or a symbolic link).', { code: 'pilot_shard_file' });
    return bad(e.failure === 'not_regular' ? 'the shard file is not a regular file' : `the input is larger than ${MAX_SHARD_INPUT} bytes`);
  }
}

/** A shard typed at a terminal: one hidden line (hidden-input.ts). */
export function readHidden(io: PilotIo, prompt: string, max = MAX_SHARD_INPUT): Promise<Buffer> {
  return readHiddenLine(io, {
    prompt,
    max,
    tooLarge: new PilotError(`Error: Invalid recovery shard: the input is larger than ${max} bytes.`, { code: 'pilot_invalid_shard' }),
    multiLine: new PilotError('Error: Invalid recovery shard: more than one line was typed or pasted.', { code: 'pilot_invalid_shard' }),
  });
}

/** Reads the shard from `file`, the terminal (hidden) or piped stdin, and parses it. */
export async function readShard(io: PilotIo, file: string | undefined): Promise<Share> {
  let raw: Buffer;
  if (file !== undefined && file !== '-') raw = readShardFile(io, file);
  else if (io.stdin.isTTY) raw = await readHidden(io, 'Enter recovery shard: ');
  else raw = await readCapped(io.stdin);
  try {
    return parseShardText(raw);
  } finally {
    raw.fill(0);
  }
}
