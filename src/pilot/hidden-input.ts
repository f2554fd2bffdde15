/**
 * One line typed at a terminal without echo (a recovery shard, a secret value given as
 * `key=-`): raw mode, nothing echoed, the prompt on stderr. Enter ends the line; Ctrl-C or
 * Ctrl-D cancels; Backspace removes the last character (a whole UTF-8 sequence). Bytes that
 * arrive after the Enter in the same read (a multi-line paste) refuse the input rather than
 * keep its first line only. Every buffer holding typed bytes is zeroed once copied out.
 */
import type { PilotIo } from './context.js';
import { PilotError } from './errors.js';

export interface HiddenLineOptions {
  /** Written to stderr before reading. */
  readonly prompt: string;
  /** Most bytes accepted. */
  readonly max: number;
  /** The error for more than `max` bytes, and for more than one line. */
  readonly tooLarge: PilotError;
  readonly multiLine: PilotError;
}

const CR = 0x0d;
const LF = 0x0a;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const DEL = 0x7f;
const BS = 0x08;

/** Reads one hidden line from a terminal `io.stdin` (see the module comment). */
export function readHiddenLine(io: PilotIo, o: HiddenLineOptions): Promise<Buffer> {
  const stdin = io.stdin;
  const buf = Buffer.alloc(o.max);
  let n = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const done = (err?: PilotError): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      if (err) {
        buf.fill(0);
        reject(err);
      } else {
        const out = Buffer.from(buf.subarray(0, n));
        buf.fill(0);
        resolve(out);
      }
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      try {
        for (let i = 0; i < b.length; i++) {
          const c = b[i]!;
          if (c === CR || c === LF) {
            // A CR LF pair is one Enter; anything after it came with the same paste.
            const rest = c === CR && b[i + 1] === LF ? i + 2 : i + 1;
            return done(rest < b.length ? o.multiLine : undefined);
          }
          if (c === CTRL_C || c === CTRL_D) return done(new PilotError('Operation canceled.', { code: 'pilot_canceled' }));
          if (c === DEL || c === BS) {
            // Drop continuation bytes (10xxxxxx), then the character's first byte.
            while (n > 0) {
              const last = buf[--n]!;
              buf[n] = 0;
              if ((last & 0xc0) !== 0x80) break;
            }
            continue;
          }
          if (n >= o.max) return done(o.tooLarge);
          buf[n++] = c;
        }
      } finally {
        b.fill(0);
      }
    };
    stdin.setRawMode?.(true);
    // The prompt only once echo is off: keys typed as soon as it shows are never echoed.
    io.stderr.write(o.prompt);
    stdin.on('data', onData);
    stdin.resume();
  });
}
