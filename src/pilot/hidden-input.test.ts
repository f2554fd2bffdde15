/**
 * The hidden-line reader (hidden-input.ts) on a fake terminal: what a test writes is what the
 * terminal delivered, one write per read. A paste split across reads is refused and drained
 * (nothing left for the shell to echo or run), a CR LF split across reads is one Enter, an
 * escape sequence is refused, and a terminal that goes away cancels; raw mode is always undone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { PilotError } from './errors.js';
import type { PilotIo } from './context.js';
import { readHiddenLine, type HiddenLineOptions } from './hidden-input.js';

function terminal(): { io: PilotIo; stdin: PassThrough; raw: boolean[]; err: () => string } {
  const raw: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (m: boolean) => void raw.push(m) });
  let err = '';
  const w = new Writable({ write(c: Buffer, _e, cb) { err += c.toString(); cb(); } });
  return { io: { stdin, stdout: w, stderr: w, env: {}, cwd: '/' }, stdin, raw, err: () => err };
}

const opts: HiddenLineOptions = {
  prompt: 'Value: ',
  max: 64,
  tooLarge: new PilotError('Error: too large.', { code: 'pilot_value_source' }),
  multiLine: new PilotError('Error: more than one line.', { code: 'pilot_value_source' }),
};

const refused = (re: RegExp) => (e: unknown): boolean => e instanceof PilotError && re.test(e.message) && !/SECRET|s3cr/.test(e.message);

test('a paste split across reads after an Enter is refused (not cut to its first line) and read to its end', async () => {
  const t = terminal();
  const p = readHiddenLine(t.io, opts);
  t.stdin.write('s3cret-line-1\r');
  t.stdin.write('SECRET-line-2\r');
  await assert.rejects(p, refused(/more than one line/));
  assert.deepEqual(t.raw, [true, false]);
  assert.equal(t.stdin.readableLength, 0, 'no byte of the paste is left for the shell');
  assert.equal(t.err(), 'Value: \n', 'nothing echoed');
  assert.equal(t.stdin.listenerCount('data'), 0);
});

test('a CR and its LF in two reads are one Enter', async () => {
  const t = terminal();
  const p = readHiddenLine(t.io, opts);
  t.stdin.write('s3cret\r');
  t.stdin.write('\n');
  assert.equal((await p).toString(), 's3cret');
  assert.deepEqual(t.raw, [true, false]);
});

test('an escape sequence (arrow key) or another control key in the line refuses it; Tab is kept', async () => {
  for (const typed of ['s3c\x1b[Dret\r', 's3c\x15ret\r']) {
    const t = terminal();
    const p = readHiddenLine(t.io, opts);
    t.stdin.write(typed);
    await assert.rejects(p, refused(/arrow, function or control key/));
    assert.deepEqual(t.raw, [true, false]);
  }
  const t = terminal();
  const p = readHiddenLine(t.io, opts);
  t.stdin.write('a\tb\r');
  assert.equal((await p).toString(), 'a\tb');
});

test('the terminal going away before Enter cancels (no hang, nothing taken) and undoes raw mode', { timeout: 20_000 }, async () => {
  for (const gone of [(s: PassThrough) => s.end(), (s: PassThrough) => s.destroy(new Error('EIO'))]) {
    const t = terminal();
    const p = readHiddenLine(t.io, opts);
    t.stdin.write('s3cr');
    gone(t.stdin);
    await assert.rejects(p, refused(/^Operation canceled\.$/));
    assert.deepEqual(t.raw, [true, false]);
  }
});

test('more than max bytes: refused, and the rest of the paste is drained', async () => {
  const t = terminal();
  const p = readHiddenLine(t.io, opts);
  t.stdin.write('x'.repeat(100));
  t.stdin.write('y'.repeat(100) + '\r');
  await assert.rejects(p, refused(/too large/));
  assert.equal(t.stdin.readableLength, 0);
  assert.deepEqual(t.raw, [true, false]);
});
