/**
 * Values from files and stdin (`key=@file`, `key=-`, `@@`/`@-` escapes): exact bytes, one
 * stdin per call, UTF-8 only, size cap, messages that name the key and file but never the content.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { PilotError } from './errors.js';
import type { PilotIo } from './context.js';
import { MAX_VALUE_BYTES, resolveValues, valueSource } from './values.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-values-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function io(stdin: string | Buffer | undefined): PilotIo & { err: () => string } {
  let err = '';
  return {
    stdout: new Writable({ write: (_c, _e, cb) => cb() }),
    stderr: new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) }),
    stdin: Readable.from(stdin === undefined ? [] : [Buffer.from(stdin)]),
    env: {},
    cwd: dir,
    err: () => err,
  };
}

function map(o: Record<string, string>): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, o);
}

test('value sources: @file, -, @@ and @- escapes, plain text', () => {
  assert.deepEqual(valueSource('plain'), { kind: 'literal', text: 'plain' });
  assert.deepEqual(valueSource('-'), { kind: 'stdin' });
  assert.deepEqual(valueSource('@pw.txt'), { kind: 'file', file: 'pw.txt' });
  assert.deepEqual(valueSource('@@pw'), { kind: 'literal', text: '@pw' });
  assert.deepEqual(valueSource('@-'), { kind: 'literal', text: '-' });
  assert.deepEqual(valueSource('a@b'), { kind: 'literal', text: 'a@b' });
  assert.deepEqual(valueSource('--'), { kind: 'literal', text: '--' });
});

test('key=@file keeps the bytes exactly (trailing newline included); key=- reads all of stdin', async () => {
  fs.writeFileSync(path.join(dir, 'pw.txt'), 's3cret\n');
  fs.writeFileSync(path.join(dir, 'multi.pem'), '-----BEGIN X-----\r\nabc\n\n');
  const v = await resolveValues(io('from stdin\n\n'), map({ password: '@pw.txt', pem: `@${path.join(dir, 'multi.pem')}`, token: '-', at: '@@x', dash: '@-', plain: 'p' }));
  assert.deepEqual({ ...v }, { password: 's3cret\n', pem: '-----BEGIN X-----\r\nabc\n\n', token: 'from stdin\n\n', at: '@x', dash: '-', plain: 'p' });
  assert.equal(Object.getPrototypeOf(v), null);
});

test('key=- refuses an empty stdin (a closed stdin reads as empty) and a directory, instead of storing an empty value', async () => {
  const refused = async (stdinIo: PilotIo, re: RegExp): Promise<void> => {
    await assert.rejects(resolveValues(stdinIo, map({ k: '-' })), (e: unknown) => e instanceof PilotError && re.test(e.message) && e.exitCode === 1);
  };
  await refused(io(''), /^Error: stdin gave no value for key 'k'; for an empty value write 'k=' instead of 'k=-'\.$/);
  await refused({ ...io('ignored'), stdinIsDirectory: () => true }, /^Error: stdin for key 'k' is a directory, not a value\.$/);
  assert.equal((await resolveValues(io(''), map({ k: '' })))['k'], '', 'an empty value written as k= is still an empty value');
  assert.equal((await resolveValues({ ...io('v'), stdinIsDirectory: () => false }, map({ k: '-' })))['k'], 'v');
  // only a line ending (echo "$UNSET" | …): stored as given, with a warning
  const nl = io('\n');
  assert.equal((await resolveValues(nl, map({ k: '-' })))['k'], '\n');
  assert.match(nl.err(), /^Warning: stdin for key 'k' was only a line ending; it is stored as such/);
  const text = io('v\n');
  await resolveValues(text, map({ k: '-' }));
  assert.equal(text.err(), '', 'no warning for a real value');
});

test('refusals: two stdin values, missing/unreadable/oversized/non-UTF-8 files, an empty @; never the content', async () => {
  const fails = async (pairs: Record<string, string>, re: RegExp, opts: { stdin?: string | Buffer; exit?: number } = {}): Promise<void> => {
    await assert.rejects(resolveValues(io(opts.stdin), map(pairs)), (e: unknown) => {
      assert.ok(e instanceof PilotError);
      assert.match(e.message, re);
      assert.equal(e.exitCode, opts.exit ?? 1);
      assert.ok(!e.message.includes('TOPSECRET'));
      return true;
    });
  };
  await fails({ a: '-', b: '-' }, /^Error: Only one value can come from stdin \(key=-\) per call\.$/, { exit: 2 });
  await fails({ a: '@' }, /^Error: Missing file name after '@' for key 'a'; write @@ for a literal '@'\.$/, { exit: 2 });
  await fails({ a: '@nope.txt' }, /^Error: Cannot read the file "nope\.txt" for key 'a': no such file\.$/);
  await fails({ a: `@${dir}` }, /is not a regular file/);
  fs.writeFileSync(path.join(dir, 'bin.dat'), Buffer.from([0x54, 0x4f, 0x50, 0xff, 0xfe]));
  await fails({ a: '@bin.dat' }, /^Error: The file "bin\.dat" for key 'a' is not UTF-8 text/);
  await fails({ a: '-' }, /^Error: stdin for key 'a' is not UTF-8 text/, { stdin: Buffer.from([0xc3, 0x28]) });
  fs.writeFileSync(path.join(dir, 'big.txt'), Buffer.alloc(MAX_VALUE_BYTES + 1, 0x41));
  await fails({ a: '@big.txt' }, /is larger than 1 MiB/);
  await fails({ a: '-' }, /^Error: stdin for key 'a' is larger than 1 MiB\.$/, { stdin: Buffer.alloc(MAX_VALUE_BYTES + 1, 0x41) });
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'TOPSECRET');
  await fails({ a: '-', b: '@secret.txt', c: '-' }, /Only one value/, { exit: 2 });
});

test('attack-value-file-procfs: key=@file through a planted symlink to /proc/self/environ (a "regular" file that reads larger than its size) is refused, not stored', { skip: !fs.existsSync('/proc/self/environ') }, async () => {
  fs.symlinkSync('/proc/self/environ', path.join(dir, 'tls.key'));
  await assert.rejects(resolveValues(io(undefined), map({ a: '@tls.key' })), (e: unknown) => e instanceof PilotError && /is not a regular file/.test(e.message));
});

/** A terminal stdin: raw-mode switches recorded; what the test writes is what the user typed. */
function terminal(): { io: PilotIo; stdin: PassThrough; raw: boolean[]; err: () => string; out: () => string } {
  const raw: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (m: boolean) => void raw.push(m) });
  let err = '';
  let out = '';
  const w = (f: (s: string) => void): Writable => new Writable({ write(c: Buffer, _e, cb) { f(c.toString()); cb(); } });
  return { io: { stdin, stdout: w((s) => (out += s)), stderr: w((s) => (err += s)), env: {}, cwd: '/' }, stdin, raw, err: () => err, out: () => out };
}

test('key=- at a terminal: one hidden line (never echoed), Backspace removes a whole character, Enter ends and is not kept', async () => {
  const t = terminal();
  const p = resolveValues(t.io, map({ password: '-', user: 'admin' }));
  t.stdin.write('s3cr\u20ac');
  t.stdin.write('\x7fet\r');
  assert.deepEqual({ ...(await p) }, { password: 's3cret', user: 'admin' });
  assert.deepEqual(t.raw, [true, false]);
  assert.equal(t.err(), "Value for key 'password' (hidden; Enter ends it): \n", 'the prompt only: nothing typed is echoed');
  assert.equal(t.out(), '');
});

test('key=- at a terminal: a multi-line paste is refused (never its first line kept); Ctrl-C and Ctrl-D cancel', async () => {
  const paste = terminal();
  const p = resolveValues(paste.io, map({ pem: '-' }));
  paste.stdin.write('-----BEGIN X-----\r\nabc\r\n-----END X-----\r\n');
  await assert.rejects(p, (e: unknown) => e instanceof PilotError &&
    e.message === "Error: More than one line was typed or pasted for key 'pem'; a terminal gives one line (use 'pem=@file' or a pipe for more)." &&
    !e.message.includes('BEGIN'));
  assert.deepEqual(paste.raw, [true, false]);
  for (const key of ['\x03', '\x04']) {
    const t = terminal();
    const q = resolveValues(t.io, map({ a: '-' }));
    t.stdin.write(`abc${key}`);
    await assert.rejects(q, (e: unknown) => e instanceof PilotError && e.message === 'Operation canceled.');
    assert.deepEqual(t.raw, [true, false]);
  }
});
