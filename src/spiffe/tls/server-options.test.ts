/**
 * The mTLS server's resolved limits: the headers bound Node gets and how often Node checks it
 * (FI-07: a 10 s headers timeout closes a dribbling connection within a second of it).
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

test('FI-07: a 10 s headers bound is checked once a second; short bounds every quarter, at least every 250 ms', async () => {
  const b = await base();
  const d = resolveServerOptions(b);
  assert.equal(d.headersTimeout, 10_000);
  assert.equal(d.timeoutCheckMs, 1_000);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 2_000 }).timeoutCheckMs, 500);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 300 }).timeoutCheckMs, 250);
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 0, requestTimeoutMs: 0 }).timeoutCheckMs, 1_000);
});

test('the headers bound never exceeds the request bound; negative limits are refused', async () => {
  const b = await base();
  assert.equal(resolveServerOptions({ ...b, headersTimeoutMs: 20_000, requestTimeoutMs: 5_000 }).headersTimeout, 5_000);
  assert.throws(() => resolveServerOptions({ ...b, headersTimeoutMs: -1 }), RangeError);
});
