/**
 * attack-json-answer-bomb: a hostile Nexus answered a `secret get` with 63 MiB of `[],` inside
 * an object; `JSON.parse` built 21 million arrays (1.6 GB; an abort under
 * `--max-old-space-size=512`) before the answer's shape was checked. An answer with more
 * values than any legitimate one (a listing of 1,000,000 paths) is now refused as
 * `data_unmarshal_failure` before it is parsed; a large legitimate answer still parses, and
 * commas and brackets inside strings do not count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAnswer } from './decode.js';
import { NexusApiError } from './errors.js';

test('attack-json-answer-bomb: millions of tiny values are refused before parsing; a listing of 1,000,000 paths and strings full of brackets are not', () => {
  const bomb = Buffer.from(`{"data":{"k":"v"},"junk":[${'[],'.repeat(4_100_000)}[]]}`);
  const started = performance.now();
  assert.throws(() => parseAnswer(bomb), (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure');
  assert.ok(performance.now() - started < 5_000);
  assert.ok(bomb.every((b) => b === 0), 'the answer is zeroed');
  const keys = Array.from({ length: 1_000_000 }, (_, i) => `apps/p${i}`);
  assert.equal((parseAnswer(Buffer.from(JSON.stringify({ keys }))) as { keys: string[] }).keys.length, 1_000_000);
  const bracketed = { data: { v: '[{,'.repeat(3_000_000) } };
  assert.equal(((parseAnswer(Buffer.from(JSON.stringify(bracketed))) as { data: { v: string } }).data.v.length), 9_000_000);
});
