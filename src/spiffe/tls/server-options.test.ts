/**
 * The mTLS server's resolved limits: the headers bound Node gets and how often Node checks it
 * (FI-07: a 10 s headers timeout must close a dribbling connection close to 10 s, not up to a
 * second later).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveServerOptions } from './server-options.js';
import { StaticX509Source } from '../source.js';
import { createMtlsPki } from '../../../test/helpers/mtls-harness.js';

const base = async (): Promise<{ source: StaticX509Source; port: number; handler: () => void }> => {
  const { serverSvid, both } = await createMtlsPki();
  return { source: new StaticX509Source(serverSvid, both), port: 0, handler: () => undefined };
};

test('FI-07: a 10 s headers bound is checked every 250 ms; short bounds every tenth, at least every 50 ms', async () => {
  const b = await base();
  const d = resolveServerOptions(b);
  assert.equal(d.headersTimeout, 10_000);
  assert.equal(d.timeoutCheckMs, 250);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 2_000 }).timeoutCheckMs, 200);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 300 }).timeoutCheckMs, 50);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 0, requestTimeoutMs: 0 }).timeoutCheckMs, 250);
});

test('the headers bound never exceeds the request bound; negative limits are refused', async () => {
  const b = await base();
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 20_000, requestTimeoutMs: 5_000 }).headersTimeout, 5_000);
  assert.throws(() => resolveServerOptions({ ...b, headersTimeoutMs: -1 }), RangeError);
});
