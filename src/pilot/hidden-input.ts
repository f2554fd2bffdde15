/**
 * One line typed at a terminal without echo (a recovery shard, a secret value given as
 * `key=-`): raw mode, nothing echoed, the prompt on stderr. Enter ends the line; Ctrl-C or
 * Ctrl-D cancels; Backspace removes the last character (a whole UTF-8 sequence). Every buffer
 * holding typed bytes is zeroed once copied out.
 *
 * After the Enter (or a refusal) the terminal stays in raw mode until it has been quiet for
 * `settleMs`, and whatever arrives meanwhile is read and zeroed: a multi-line paste reaches a
 * process in several reads (a pseudo-terminal hands over at most 4 KiB at a time, and a
 * terminal may split a paste anywhere), so bytes after the Enter in the SAME read are not all
 * of it. Any byte after the Enter refuses the input (never its first line kept), and no part of
 * a paste is left behind in the terminal, where the line discipline would echo it once raw mode
 * is off and the shell would read it as a command. An escape sequence (an arrow or function
 * key) or another control character refuses the input too: it would otherwise be stored,
 * unseen, inside the value.
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
  /** Quiet time after the Enter before the line counts as complete (default {@link SETTLE_MS}). */
  readonly settleMs?: number;
}

/** A paste arrives in reads microseconds apart (milliseconds over a slow ssh link); a person does not type after Enter this fast. */
export const SETTLE_MS = 100;
/** The longest wait for a terminal that keeps sending after the Enter: then the call ends anyway. */
const DRAIN_MAX_MS = 2_000;

const CR = 0x0d;
const LF = 0x0a;
const TAB = 0x09;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const DEL = 0x7f;
const BS = 0x08;

const canceled = (): PilotError => new PilotError('Operation canceled.', { code: 'pilot_canceled' });

/** Reads one hidden line from a terminal `io.stdin` (see the module comment). */
export function readHiddenLine(io: PilotIo, o: HiddenLineOptions): Promise<Buffer> {
  const stdin = io.stdin;
  const settleMs = o.settleMs ?? SETTLE_MS;
  const buf = Buffer.alloc(o.max);
  let n = 0;
  return new Promise<Buffer>((resolve, reject) => {
    /** Set once the line ended (Enter) or was refused: from then on input is only drained. */
    let ended = false;
    let outcome: PilotError | undefined;
    let quiet: NodeJS.Timeout | undefined;
    let cap: NodeJS.Timeout | undefined;
    let settled = false;
    /** The line ended on a CR that was the last byte of its read: an LF opening the next read is the same Enter. */
    let crAtEnd = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      stdin.off('data', onData);
      stdin.off('end', onGone);
      stdin.off('error', onGone);
      try {
        stdin.setRawMode?.(false);
      } finally {
        stdin.pause();
        io.stderr.write('\n');
        if (outcome) {
          buf.fill(0);
          reject(outcome);
        } else {
          const out = Buffer.from(buf.subarray(0, n));
          buf.fill(0);
          resolve(out);
        }
      }
    };
    /** The line is over (`err`: refused); keep draining until the terminal is quiet. */
    const end = (err?: PilotError): void => {
      if (!ended) {
        ended = true;
        outcome = err;
        cap = setTimeout(done, Math.max(DRAIN_MAX_MS, settleMs));
      } else {
        outcome ??= err;
      }
      clearTimeout(quiet);
      quiet = setTimeout(done, settleMs);
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      try {
        if (ended) {
          // More input after the Enter: the rest of a paste (or keys typed ahead): refused, read, zeroed.
          const skip = crAtEnd && b[0] === LF ? 1 : 0;
          crAtEnd = false;
          if (b.length > skip) end(outcome ?? o.multiLine);
          return;
        }
        for (let i = 0; i < b.length; i++) {
          const c = b[i]!;
          if (c === CR || c === LF) {
            // A CR LF pair is one Enter; anything after it came with the same paste.
            const rest = c === CR && b[i + 1] === LF ? i + 2 : i + 1;
            crAtEnd = c === CR && rest === b.length;
            return end(outcome ?? (rest < b.length ? o.multiLine : undefined));
          }
          if (c === CTRL_C || c === CTRL_D) return end(canceled());
          if (c === DEL || c === BS) {
            // Drop continuation bytes (10xxxxxx), then the character's first byte.
            while (n > 0) {
              const last = buf[--n]!;
              buf[n] = 0;
              if ((last & 0xc0) !== 0x80) break;
            }
            continue;
          }
          if (c < 0x20 && c !== TAB) {
            // ESC (arrow and function keys) or another control key: refused at the Enter.
            outcome ??= new PilotError('Error: An arrow, function or control key was typed into the hidden input; nothing was kept. Type it again.', { code: o.multiLine.code });
            continue;
          }
          if (outcome) continue;
          if (n >= o.max) return end(o.tooLarge);
          buf[n++] = c;
        }
      } finally {
        b.fill(0);
      }
    };
    /** The terminal went away (hang-up, read error): a line not yet ended is canceled, never taken as typed so far. */
    const onGone = (): void => {
      if (!ended) outcome ??= canceled();
      done();
    };
    stdin.setRawMode?.(true);
    // The prompt only once echo is off: keys typed as soon as it shows are never echoed.
    io.stderr.write(o.prompt);
    stdin.on('data', onData);
    stdin.once('end', onGone);
    stdin.once('error', onGone);
    stdin.resume();
  });
}
