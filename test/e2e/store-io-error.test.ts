/**
 * A real I/O error on the SQLite log's sync (EIO from `fdatasync`, injected into the running
 * spike-nexus with `strace -P <log> -e inject=…`; root and ptrace needed, strace installed from
 * Debian's packages when missing). After a failed sync the kernel may have dropped pages it
 * could not write, so Nexus must not trust anything committed since the last good sync:
 *
 * - the write whose sync failed is never acknowledged: 503 `store_unavailable`-class
 *   (`state_not_ready`, store failure `io_error`) with outcome `unknown` (it was committed);
 * - every later write (outcome `not_applied`: refused before it runs) and read is refused,
 *   also once the fault is gone: a later sync's success would prove nothing; the fault is one
 *   ERROR line (the alarm), however many requests it refuses; readiness names `store_stopped`; the process stays up;
 * - after a restart (the fault gone), every write acknowledged before the fault reads back
 *   exactly, and the unknown one is either absent or exactly what was sent.
 *
 * And an I/O error while COMMIT writes the log (EIO from `pwrite64` on the WAL): SQLite rolls
 * the transaction back, but the answer must not promise that (no `not_applied`: the SDK would
 * send the write elsewhere); reads go on, writes work again once the disk does, with no restart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NexusApiError } from '../../src/sdk/index.js';
import { Stack } from '../helpers/stack.js';
import { canAttach, injectErrno } from '../helpers/strace.js';

const canTrace = canAttach();
let stack: Stack | undefined;

before(async () => {
  if (canTrace) stack = await Stack.start({ ops: true });
});
after(async () => {
  await stack?.stop();
});

/** The code, HTTP status, store failure and outcome of a refused call, or 'ok'. */
async function outcomeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof NexusApiError, String(e));
    return `${e.code} ${e.status} ${e.storeFailure} ${e.outcome ?? '-'}`;
  }
}

test('EIO on the log sync: the write is not acknowledged, the store refuses reads and writes until a restart, acknowledged writes survive', { skip: !canTrace && 'needs root and ptrace (strace attaches to Nexus)' }, async () => {
  const s = stack!;
  const pilot = await s.client('pilot');
  const acked = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    await pilot.putSecret(`io/ok/${i}`, { v: `before-${i}` });
    acked.set(`io/ok/${i}`, `before-${i}`);
  }
  const pid = s.pid('nexus')!;
  const errorsBefore = s.logLines('nexus', 'error').length;
  const fault = await injectErrno(pid, {
    syscalls: ['fdatasync', 'fsync'],
    errno: 'EIO',
    onlyPath: path.join(s.dir, 'data', 'spike.db-wal'),
    file: path.join(s.dir, 'eio.strace'),
  });
  try {
    assert.equal(await outcomeOf(pilot.putSecret('io/unknown', { v: 'sent-once' })), 'state_not_ready 503 io_error unknown');
    assert.match(fs.readFileSync(fault.file, 'utf8'), /fdatasync\(\d+\)\s+= -1 EIO .*INJECTED/, 'the sync really failed');
    // Refused from now on, reads included, even for data synced long before the fault.
    // Later writes are refused before they run: nothing applied.
    assert.equal(await outcomeOf(pilot.putSecret('io/later', { v: 'x' })), 'state_not_ready 503 io_error not_applied');
    assert.equal(await outcomeOf(pilot.getSecret('io/ok/0')), 'state_not_ready 503 io_error -');
    assert.equal(await outcomeOf(pilot.listSecrets()), 'state_not_ready 503 io_error -');
  } finally {
    await fault.stop();
  }
  // The fault is gone, but a later sync's success would prove nothing: still refused.
  assert.equal(await outcomeOf(pilot.putSecret('io/after-fault', { v: 'x' })), 'state_not_ready 503 io_error not_applied');
  assert.equal(await outcomeOf(pilot.getSecret('io/ok/1')), 'state_not_ready 503 io_error -');
  assert.equal(s.nexusProcess()?.exitCode, null, 'Nexus is still running');
  assert.deepEqual(await failing(s), ['store', 'store_stopped'], 'readiness names the stopped store');
  const during = s.logLines('nexus', 'error').slice(errorsBefore);
  assert.equal(during.length, 1, `one ERROR line for the one fault (${JSON.stringify(during)})`);
  assert.equal(during[0]!['alarm'], 'wal_sync_failed');
  assert.equal(during[0]!['err'], 'EIO');

  await s.killNexus('SIGKILL');
  await s.startNexus();
  await s.waitReady();
  const reader = await s.client('pilot');
  for (const [p, v] of acked) assert.equal((await reader.getSecret(p))['v'], v, p);
  const unknown = await reader.getSecret('io/unknown').then((v) => v['v'], (e: unknown) => (e as NexusApiError).code);
  assert.ok(unknown === 'sent-once' || unknown === 'api_not_found', `the unacknowledged write is whole or absent (${String(unknown)})`);
  await reader.putSecret('io/after-restart', { v: 'y' });
  assert.equal((await reader.getSecret('io/after-restart'))['v'], 'y', 'writes work again after the restart');
  assert.deepEqual(await failing(s), [], 'ready again after the restart');
});

test('EIO while COMMIT writes the log: 503 io_error without not_applied, reads go on, writes work again once the disk does', { skip: !canTrace && 'needs root and ptrace (strace attaches to Nexus)' }, async () => {
  const s = stack!;
  // A Nexus of its own: independent of how the test before it ended.
  await s.killNexus('SIGKILL');
  await s.startNexus();
  await s.waitReady();
  const pilot = await s.client('pilot');
  await pilot.putSecret('io/w/ok', { v: 'before' });
  const errorsBefore = s.logLines('nexus', 'error').length;
  const fault = await injectErrno(s.pid('nexus')!, {
    syscalls: ['pwrite64', 'write'],
    errno: 'EIO',
    onlyPath: path.join(s.dir, 'data', 'spike.db-wal'),
    file: path.join(s.dir, 'eio-write.strace'),
  });
  let refused: string;
  try {
    refused = await outcomeOf(pilot.putSecret('io/w/failed', { v: 'sent-once' }));
    assert.match(fs.readFileSync(fault.file, 'utf8'), /pwrite64\(.*= -1 EIO .*INJECTED/, 'the log write really failed');
    assert.equal((await pilot.getSecret('io/w/ok'))['v'], 'before', 'reads go on');
  } finally {
    await fault.stop();
  }
  assert.match(refused, /^state_not_ready 503 io_error (-|unknown)$/, refused);
  const during = s.logLines('nexus', 'error').slice(errorsBefore);
  assert.equal(during.length, 1, `one ERROR line for the one fault (${JSON.stringify(during)})`);
  assert.deepEqual(await failing(s), [], 'a failed log write does not stop the store');
  await pilot.putSecret('io/w/after', { v: 'after' });
  assert.equal((await pilot.getSecret('io/w/after'))['v'], 'after', 'writes work again without a restart');
  const failed = await pilot.getSecret('io/w/failed').then((v) => v['v'], (e: unknown) => (e as NexusApiError).code);
  assert.ok(failed === 'sent-once' || failed === 'api_not_found', `the refused write is whole or absent (${String(failed)})`);
});

/** The `failing` list of Nexus's `/readyz`. */
async function failing(s: Stack): Promise<string[]> {
  const r = await fetch(`${s.nexusOpsUrl()}/readyz`);
  return ((await r.json()) as { failing: string[] }).failing;
}
