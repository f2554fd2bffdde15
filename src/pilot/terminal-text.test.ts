/**
 * ATTACK terminal escape in a stored value: a secret value (or key, metadata, policy field)
 * written by someone else must not drive the reader's terminal when `spike` prints it there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Readable } from 'node:stream';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { NexusClient } from '../sdk/client.js';
import { PilotContext } from './context.js';
import { run } from './main.js';
import { ESCAPED_NOTE, escapeForTerminal } from './terminal-text.js';
import { toJson } from './format.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return Object.assign(w, { isTTY, text: () => Buffer.concat(chunks).toString('utf8'), bytes: () => Buffer.concat(chunks) });
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

test('ATTACK terminal escape sequence in a decrypted plaintext: `spike cipher decrypt` at a terminal shows it escaped; through a pipe the exact bytes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-tty-'));
  try {
    const sock = path.join(dir, 'agent.sock');
    fs.writeFileSync(sock, ''); // exists; the connect seam never dials it
    const envelope = path.join(dir, 'in.bin');
    fs.writeFileSync(envelope, Buffer.from([1, 2, 3]));
    const plaintext = Buffer.from('ok\u001b]52;c;cm0gLXJmIH4=\u0007\u00e9\n', 'utf8');
    const decrypt = async (isTTY: boolean): Promise<{ code: number; out: Buffer; err: string }> => {
      const out = sink(isTTY);
      const err = sink(false);
      const code = await run(['cipher', 'decrypt', '-f', envelope], { stdout: out, stderr: err, stdin: Readable.from([]), env: { SPIFFE_ENDPOINT_SOCKET: `unix://${sock}` }, cwd: dir }, {
        connect: async () => NexusClient.create({
          urls: ['https://127.0.0.1:1'],
          // The server's answer: the plaintext, split inside the escape sequence and inside the UTF-8 'é'.
          dispatcher: {
            request: async (r) => {
              if (r.body instanceof Readable) for await (const _ of r.body); // the envelope is read, as a server would
              return { statusCode: 200, body: Readable.from([plaintext.subarray(0, 5), plaintext.subarray(5, 23), plaintext.subarray(23)]) };
            },
            close: async () => undefined,
          },
        }),
      });
      return { code, out: out.bytes(), err: err.text() };
    };
    const tty = await decrypt(true);
    assert.equal(tty.code, 0, tty.err);
    assert.equal(tty.out.toString('utf8'), 'ok\\x1b]52;c;cm0gLXJmIH4=\\x07\u00e9\n');
    assert.equal(tty.err, `${ESCAPED_NOTE}\n`);
    const pipe = await decrypt(false);
    assert.equal(pipe.code, 0, pipe.err);
    assert.deepEqual(pipe.out, plaintext, 'the exact bytes');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ATTACK terminal escape sequence in --json output: DEL, C1 and bidirectional controls (raw after JSON.stringify) come out as \\uNNNN: valid, exact JSON at a terminal and through a pipe', () => {
  const doc = { value: 'a\u007fb\u009b2J\u0085c\u202etxt\u2066\u001b]52;c;eA==\u0007', 'k\u009d': ['\u2069'] };
  const json = toJson(doc);
  // eslint-disable-next-line no-control-regex
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(json), json);
  assert.deepEqual(JSON.parse(json), doc);
  const tty = context(true);
  tty.ctx.out(json);
  assert.deepEqual(JSON.parse(tty.stdout.text()), doc, 'still valid JSON of the same value at a terminal');
  assert.equal(tty.stderr.text(), '', 'nothing left to escape: no warning');
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (v) => {
      const out = toJson({ v });
      assert.equal(escapeForTerminal(out).changed, false);
      assert.deepEqual(JSON.parse(out), { v });
    }),
  );
});
