/**
 * ATTACK terminal escape in a stored value: a secret value (or key, metadata, policy field)
 * written by someone else must not drive the reader's terminal when `spike` prints it there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { PilotContext } from './context.js';
import { ESCAPED_NOTE, escapeForTerminal } from './terminal-text.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return Object.assign(w, { isTTY, text: () => chunks.join('') });
}

function context(isTTY: boolean): { ctx: PilotContext; stdout: ReturnType<typeof sink>; stderr: ReturnType<typeof sink> } {
  const stdout = sink(isTTY);
  const stderr = sink(false);
  const ctx = new PilotContext({ stdout, stderr, stdin: process.stdin, env: {}, cwd: '/' }, () => ({}));
  return { ctx, stdout, stderr };
}

test('escapeForTerminal: C0 (but tab and newline), DEL and C1 shown as escapes; everything else unchanged', () => {
  assert.deepEqual(escapeForTerminal('pw: \u001b]52;c;ZXZpbA==\u0007\n'), { text: 'pw: \\x1b]52;c;ZXZpbA==\\x07\n', changed: true });
  assert.deepEqual(escapeForTerminal('a\tb\nc'), { text: 'a\tb\nc', changed: false });
  assert.equal(escapeForTerminal('\r\u0000\u007f\u009b2J').text, '\\x0d\\x00\\x7f\\u009b2J');
  assert.equal(escapeForTerminal('pässwörd ✓ 密码 كلمة').changed, false, 'printable Unicode (right-to-left scripts too) is left alone');
  assert.equal(escapeForTerminal('admin\u202Etxt.exe\u2066x\u2069').text, 'admin\\u202etxt.exe\\u2066x\\u2069', 'bidirectional overrides and isolates');
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const { text } = escapeForTerminal(s);
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(text));
    }),
  );
});

test('ATTACK terminal escape sequence in a secret value: escaped at a terminal with one warning, exact through a pipe', () => {
  const value = 'x\u001b[2K\u001b[1Gfake: value\n';
  const tty = context(true);
  tty.ctx.out(value);
  tty.ctx.out('\u001b]0;title\u0007\n');
  assert.equal(tty.stdout.text(), 'x\\x1b[2K\\x1b[1Gfake: value\n\\x1b]0;title\\x07\n');
  assert.equal(tty.stderr.text(), `${ESCAPED_NOTE}\n`, 'one warning per run');
  const pipe = context(false);
  pipe.ctx.out(value);
  assert.equal(pipe.stdout.text(), value);
  assert.equal(pipe.stderr.text(), '');
  const plain = context(true);
  plain.ctx.out('OK: wrote secret a/b.\n');
  assert.equal(plain.stderr.text(), '', 'no warning without control characters');
});
