/**
 * `spike cipher encrypt|decrypt|rewrap`: encryption as a service through Nexus.
 *
 * Stream mode (default): the input (`-f/--file` or stdin) is sent as
 * `application/octet-stream` and Nexus's raw answer is written to the output (`-o/--out` or
 * stdout). JSON mode: `encrypt --plaintext <base64>`, `decrypt --version/--nonce/--ciphertext`.
 *
 * Unlike SPIKE (gaps B5), JSON-mode encrypt writes the full envelope
 * (version byte ‖ nonce ‖ ciphertext), the same bytes as stream mode, so the output can be
 * decrypted later with `spike cipher decrypt -f <file>`.
 *
 * `--format json|yaml` (or `--json`; `-f` is `--file` here): the output bytes as base64 in
 * `{"ciphertext": …}` (the envelope) or `{"plaintext": …}` on stdout; with `-o` the file gets
 * the raw bytes and stdout `{"ok": true, "out": <file>}`. Human form: the raw bytes, nothing else
 * (with `-o` nothing on stdout, as SPIKE's CLI: the output is the file).
 *
 * `rewrap` takes an envelope (`-f` or stdin) or the JSON-mode flags and writes the envelope
 * re-encrypted under Nexus's current key version (after a root-key rotation); the plaintext
 * never leaves Nexus.
 *
 * An output file is written to a temporary file in the same folder (mode 0600) and renamed
 * into place only after the whole answer arrived: a failed call never truncates or
 * half-writes an existing file (SPIKE creates the output before the call).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { Command } from 'commander';
import { MAX_CIPHER_STREAM_BYTES } from '../protocol/curve-free.js';
import { PilotError, usageError } from './errors.js';
import { act, type PilotContext } from './context.js';
import { addFormatOptions, parseFormat, render, success, type FormatOpts, type OutputFormat } from './format.js';
import { parseVersionByte } from './validate.js';
import { removeOnSignal } from './signal-cleanup.js';

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict standard base64 (padded, as Go encodes `[]byte`). */
function decodeBase64Strict(s: string, flag: string): Buffer {
  const t = s.trim();
  if (t.length % 4 !== 0 || !B64_RE.test(t)) throw usageError(`Error: Invalid ${flag} base64.`);
  return Buffer.from(t, 'base64');
}

function openInput(ctx: PilotContext, file: string | undefined): Readable {
  if (file === undefined || file === '-') return ctx.io.stdin;
  const abs = path.resolve(ctx.io.cwd, file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new PilotError(`Error: Input file does not exist: ${file}`, { code: 'pilot_input_missing' });
  }
  if (!st.isFile()) throw new PilotError(`Error: Input is not a regular file: ${file}`, { code: 'pilot_input_missing' });
  return fs.createReadStream(abs);
}

/** Writes a stream to `-o` (temp file + fsync + rename, mode 0600) or to stdout. */
async function writeOutput(ctx: PilotContext, out: string | undefined, data: Readable | Uint8Array): Promise<void> {
  const src = data instanceof Uint8Array ? Readable.from([Buffer.from(data.buffer, data.byteOffset, data.byteLength)]) : data;
  if (out === undefined || out === '-') {
    if (ctx.io.stdout.isTTY === true) {
      // A terminal gets text with its control characters escaped (a plaintext is chosen by
      // whoever encrypted it; terminal-text.ts); pipes and files get the exact bytes.
      const text = new StringDecoder('utf8');
      for await (const chunk of src) ctx.out(text.write(chunk as Buffer));
      ctx.out(text.end());
      return;
    }
    await pipeline(src, ctx.io.stdout, { end: false });
    return;
  }
  const abs = path.resolve(ctx.io.cwd, out);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch {
    throw new PilotError(`Error: Cannot create output file: ${out}`, { code: 'pilot_output' });
  }
  const ws = fs.createWriteStream('', { fd, autoClose: false });
  const disarm = removeOnSignal(tmp);
  try {
    await pipeline(src, ws, { end: false });
    await new Promise<void>((resolve, reject) => ws.end((e?: Error | null) => (e ? reject(e) : resolve())));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, abs);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    disarm();
  }
}


/**
 * Most bytes collected in memory (`--json`/`--yaml` output, a rewrap's input): Nexus's largest
 * stream plus an envelope (version, nonce, tag) and some slack; a longer answer or input is
 * refused with one line instead of growing without bound.
 */
const MAX_COLLECT_BYTES = MAX_CIPHER_STREAM_BYTES + 1024;

async function collectBytes(data: Readable, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of data) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
      chunks.push(b);
      total += b.length;
      if (total > MAX_COLLECT_BYTES) {
        data.destroy();
        throw new PilotError(`Error: ${what} is larger than Nexus's largest cipher stream (64 MiB); nothing was done with it.`);
      }
    }
    return Buffer.concat(chunks);
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/** Writes the result in the chosen format (see the module comment). */
async function emit(ctx: PilotContext, format: OutputFormat, out: string | undefined, data: Readable | Uint8Array, field: 'ciphertext' | 'plaintext'): Promise<void> {
  if (format === 'human') return writeOutput(ctx, out, data);
  if (out !== undefined && out !== '-') {
    await writeOutput(ctx, out, data);
    ctx.out(success(format, `wrote ${out}`, { out }));
    return;
  }
  const buf = data instanceof Uint8Array ? Buffer.from(data) : await collectBytes(data, 'The answer');
  try {
    ctx.out(render(format, { [field]: buf.toString('base64') }, () => ''));
  } finally {
    buf.fill(0);
  }
}

export function registerCipher(program: Command, ctx: PilotContext): void {
  const cipher = program.command('cipher').description('Encrypt and decrypt data with SPIKE Nexus (keys never leave Nexus)');

  addFormatOptions(
    cipher
      .command('encrypt')
      .description('Encrypt a file or stdin (stream mode), or --plaintext (JSON mode)')
      .option('-f, --file <path>', 'input file (default: stdin)')
      .option('-o, --out <path>', 'output file (default: stdout)')
      .option('--plaintext <base64>', 'JSON mode: base64 plaintext')
      .option('--algorithm <name>', 'JSON mode: algorithm hint (ignored by Nexus)'),
  )
    .action(
      act(ctx, 'cipher', 'encrypt', async (o: FormatOpts & { file?: string; out?: string; plaintext?: string; algorithm?: string }) => {
        const format = parseFormat(o.format, o.json);
        if (o.plaintext !== undefined && o.plaintext !== '') {
          if (o.file !== undefined) throw usageError('Error: Use either --plaintext or --file, not both.');
          const pt = decodeBase64Strict(o.plaintext, '--plaintext');
          const client = await ctx.nexus('any');
          let ct;
          try {
            ct = await client.encrypt(pt, o.algorithm !== undefined ? { algorithm: o.algorithm } : {});
          } finally {
            pt.fill(0);
          }
          const envelope = Buffer.concat([Buffer.from([ct.version]), ct.nonce, ct.ciphertext]);
          await emit(ctx, format, o.out, envelope, 'ciphertext');
          return;
        }
        const input = openInput(ctx, o.file);
        const client = await ctx.nexus('any');
        const res = await client.encryptStream(input);
        await emit(ctx, format, o.out, res, 'ciphertext');
      }),
    );

  addFormatOptions(
    cipher
      .command('decrypt')
      .description('Decrypt a file or stdin (stream mode), or --version/--nonce/--ciphertext (JSON mode)')
      .option('-f, --file <path>', 'input file (default: stdin)')
      .option('-o, --out <path>', 'output file (default: stdout)')
      .option('--version <n>', 'JSON mode: ciphertext version byte (0-255, default 1)')
      .option('--nonce <base64>', 'JSON mode: base64 nonce')
      .option('--ciphertext <base64>', 'JSON mode: base64 ciphertext')
      .option('--algorithm <name>', 'JSON mode: algorithm hint (ignored by Nexus)'),
  )
    .action(
      act(
        ctx,
        'cipher',
        'decrypt',
        async (o: FormatOpts & { file?: string; out?: string; version?: string; nonce?: string; ciphertext?: string; algorithm?: string }) => {
          const format = parseFormat(o.format, o.json);
          const jsonMode = o.version !== undefined || o.nonce !== undefined || o.ciphertext !== undefined;
          if (jsonMode) {
            if (o.file !== undefined) throw usageError('Error: Use either the JSON-mode flags or --file, not both.');
            const version = o.version !== undefined ? parseVersionByte(o.version) : 1;
            if (o.nonce === undefined || o.ciphertext === undefined) throw usageError('Error: JSON mode needs --nonce and --ciphertext.');
            const nonce = decodeBase64Strict(o.nonce, '--nonce');
            const ciphertext = decodeBase64Strict(o.ciphertext, '--ciphertext');
            const client = await ctx.nexus('any');
            const pt = await client.decrypt({ version, nonce, ciphertext }, o.algorithm !== undefined ? { algorithm: o.algorithm } : {});
            try {
              await emit(ctx, format, o.out, pt, 'plaintext');
            } finally {
              pt.fill(0);
            }
            return;
          }
          const input = openInput(ctx, o.file);
          const client = await ctx.nexus('any');
          const res = await client.decryptStream(input);
          await emit(ctx, format, o.out, res, 'plaintext');
        },
      ),
    );

  addFormatOptions(
    cipher
      .command('rewrap')
      .description('Re-encrypt a ciphertext envelope (file or stdin, or --version/--nonce/--ciphertext) under the current key version')
      .option('-f, --file <path>', 'input envelope file (default: stdin)')
      .option('-o, --out <path>', 'output file (default: stdout)')
      .option('--version <n>', 'JSON mode: ciphertext version byte (0-255)')
      .option('--nonce <base64>', 'JSON mode: base64 nonce')
      .option('--ciphertext <base64>', 'JSON mode: base64 ciphertext'),
  )
    .action(
      act(ctx, 'cipher', 'rewrap', async (o: FormatOpts & { file?: string; out?: string; version?: string; nonce?: string; ciphertext?: string }) => {
        const format = parseFormat(o.format, o.json);
        let ct: { version: number; nonce: Buffer; ciphertext: Buffer };
        if (o.version !== undefined || o.nonce !== undefined || o.ciphertext !== undefined) {
          if (o.file !== undefined) throw usageError('Error: Use either the JSON-mode flags or --file, not both.');
          const version = parseVersionByte(o.version ?? '');
          if (o.nonce === undefined || o.ciphertext === undefined) throw usageError('Error: JSON mode needs --nonce and --ciphertext.');
          ct = { version, nonce: decodeBase64Strict(o.nonce, '--nonce'), ciphertext: decodeBase64Strict(o.ciphertext, '--ciphertext') };
        } else {
          const env = await collectBytes(openInput(ctx, o.file), 'The input');
          if (env.length < 1 + 12 + 16) throw usageError('Error: Input is not a cipher envelope (too short).');
          ct = { version: env[0]!, nonce: env.subarray(1, 13), ciphertext: env.subarray(13) };
        }
        const client = await ctx.nexus('any');
        const next = await client.rewrap(ct);
        const envelope = Buffer.concat([Buffer.from([next.version]), next.nonce, next.ciphertext]);
        await emit(ctx, format, o.out, envelope, 'ciphertext');
      }),
    );
}
