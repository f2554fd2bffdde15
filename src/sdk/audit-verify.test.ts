/**
 * `verifyAuditLines` (behind `NexusClient.auditVerify`): batches within the route's limits,
 * in order, stopping at the first invalid line; maps a batch index back to the caller's
 * line; refuses a malformed answer; an over-long line is reported without being sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AUDIT_VERIFY_LIMITS } from '../protocol/index.js';
import { verifyAuditLines } from './audit-verify.js';
import { NexusApiError } from './errors.js';

const lines = (n: number, len = 400): string[] => Array.from({ length: n }, (_, i) => `${i}`.padEnd(len, 'x'));

test('audit verify: batches in order, within the limits; the index maps back to the caller\'s line', async () => {
  const batches: string[][] = [];
  const all = lines(1000, 3000);
  const bad = 300;
  const r = await verifyAuditLines(async (b) => {
    batches.push(b);
    assert.ok(b.length <= AUDIT_VERIFY_LIMITS.maxEntries);
    assert.ok(Buffer.byteLength(JSON.stringify({ entries: b })) <= AUDIT_VERIFY_LIMITS.maxBodyBytes);
    const at = b.indexOf(all[bad]!);
    return { verified: at === -1 ? b.length : at, firstInvalid: at === -1 ? null : at };
  }, all);
  assert.equal(r, bad);
  assert.deepEqual(batches.flat(), all.slice(0, batches.flat().length), 'in order, nothing skipped');
  assert.ok(batches.flat().length < all.length, 'stopped at the batch with the invalid line');
  assert.ok(batches.length > 1);
  assert.equal(await verifyAuditLines(async (b) => ({ verified: b.length, firstInvalid: null }), lines(600)), null);
  assert.equal(await verifyAuditLines(async () => assert.fail('nothing to send'), []), null);
  // long lines: the body cap, not the line count, bounds a batch
  let calls = 0;
  assert.equal(await verifyAuditLines(async (b) => {
    calls++;
    assert.ok(Buffer.byteLength(JSON.stringify({ entries: b })) <= AUDIT_VERIFY_LIMITS.maxBodyBytes);
    return { verified: b.length, firstInvalid: null };
  }, lines(300, AUDIT_VERIFY_LIMITS.maxEntryLength)), null);
  assert.ok(calls >= 7, `${calls} calls`);
});

test('audit verify: a malformed answer is refused; an over-long line is never sent', async () => {
  for (const answer of [{}, { firstInvalid: 5 }, { firstInvalid: -1 }, { firstInvalid: '0' }, { firstInvalid: 0.5 }]) {
    await assert.rejects(verifyAuditLines(async () => answer, lines(3)), (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure');
  }
  const long = [...lines(3), 'y'.repeat(AUDIT_VERIFY_LIMITS.maxEntryLength + 1), ...lines(2)];
  const sent: string[] = [];
  assert.equal(await verifyAuditLines(async (b) => { sent.push(...b); return { verified: b.length, firstInvalid: null }; }, long), 3);
  assert.deepEqual(sent, lines(3));
});
