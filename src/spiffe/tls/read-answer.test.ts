/**
 * readAnswer (https-client.ts): an answer body read whole under a byte cap and a deadline,
 * the chunks read so far zeroed when it fails (Keeper answers carry share values).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { AnswerTooLargeError, readAnswer } from './https-client.js';

const answer = (): { body: PassThrough } => ({ body: new PassThrough() });

test('reads a body up to the cap, and zeroes what it read when the cap is passed', async () => {
  const ok = answer();
  const read = readAnswer(ok.body, 8, new AbortController().signal);
  ok.body.end(Buffer.from('12345678'));
  assert.equal((await read).toString(), '12345678');

  const big = answer();
  const first = Buffer.from('secret');
  const over = readAnswer(big.body, 8, new AbortController().signal);
  big.body.write(first);
  await new Promise((resolve) => setImmediate(resolve)); // read as its own chunk
  big.body.write(Buffer.from('-more'));
  await assert.rejects(over, AnswerTooLargeError);
  assert.ok(first.every((b) => b === 0), 'the chunk read before the cap was zeroed');
  assert.ok(big.body.destroyed);
});

test('the deadline covers the body: an abort while the server is still sending ends the read', async () => {
  const slow = answer();
  const ac = new AbortController();
  const read = readAnswer(slow.body, 1024, ac.signal);
  slow.body.write(Buffer.from('{"sh'));
  ac.abort(new Error('deadline passed'));
  await assert.rejects(read, /deadline passed/);
  assert.ok(slow.body.destroyed);
});
