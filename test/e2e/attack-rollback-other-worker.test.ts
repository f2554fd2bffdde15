/**
 * attack-rollback-other-worker (found in the thirty-third review's follow-up): with several
 * worker processes on one SQLite file, each worker's rollback chain knows only the anchor
 * records it read or committed itself. An older copy put back right after writes served by
 * one worker was refused by that worker only; the other, which had never read the newer
 * records, kept serving the older copy (with its older policies) until it wrote or read
 * something newer. Now the Keepers are the witness every worker shares: the Keeper probe finds
 * the store behind the anchor they hold, and the worker that detects a rollback first hands
 * them the highest counter it knows of, so every worker refuses within a probe interval.
 */
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { rawClient, waitFor } from './secrets-helpers.js';
import { PATHS } from '../../src/protocol/index.js';

const S = PATHS.secrets;
const P = PATHS.policy;
const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

/** The status of a get over a new connection (the kernel picks the worker). */
async function freshGet(stack: Stack): Promise<number> {
  const c = await rawClient(stack, 'pilot');
  try {
    return (await c.post(`${S}?action=get`, { path: 'app/x' })).status;
  } finally {
    await c.close();
  }
}

test('attack-rollback-other-worker: an older copy put back after writes through one worker is refused by every worker, then accepted once', async () => {
  const stack = await Stack.start({ nexusEnv: { SPIKE_NEXUS_WORKERS: '2', SPIKE_SYSTEM_LOG_LEVEL: 'INFO' } });
  stacks.push(stack);
  await waitFor(() => [1, 2].every((n) => new RegExp(`"worker":${n}[^\\n]*root key recovered from keepers`).test(stack.logs('nexus'))), 60_000, 'both workers');
  const pilot = await rawClient(stack, 'pilot');
  try {
    assert.equal((await pilot.post(S, { path: 'app/x', values: { v: 'x' } })).status, 200);
    const copy = path.join(tempDir('spike-rollback-workers-'), 'older.db');
    const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
    assert.equal(b.code, 0, b.stderr);
    // Writes after the backup, all through the one connection (one worker), then the copy at once.
    for (let i = 0; i < 3; i++) {
      assert.equal((await pilot.post(P, { name: `p-${i}`, spiffeidPattern: '^spiffe://spike\\.ist/nobody$', pathPattern: '^app/.*$', permissions: ['read'] })).status, 200);
    }
    const src = new Database(copy, { readonly: true });
    await src.backup(path.join(stack.dir, 'data', 'spike.db'));
    src.close();

    await waitFor(() => [1, 2].every((n) => new RegExp(`"worker":${n}[^\\n]*STATE ROLLBACK DETECTED`).test(stack.logs('nexus'))), 60_000,
      `both workers to detect the rollback:\n${stack.logs('nexus').split('\n').filter((l) => /ROLLBACK|rollback/.test(l)).join('\n')}`);
    for (let i = 0; i < 6; i++) assert.equal(await freshGet(stack), 503, 'every connection is refused, whichever worker takes it');

    const accepted = await pilot.post('/v1/operator/accept-rollback', {});
    assert.equal(accepted.status, 200, accepted.body);
    assert.match(accepted.body, /"accepted":true/);
    await waitFor(() => /worker listening again/.test(stack.logs('nexus')), 60_000, 'the other worker to be replaced');
    await waitFor(async () => (await freshGet(stack)) === 200, 60_000, 'service after the accept');
    for (let i = 0; i < 6; i++) assert.equal(await freshGet(stack), 200, 'every worker serves the accepted store');
    assert.doesNotMatch(stack.logs('nexus').split('rollback accepted')[1] ?? '', /STATE ROLLBACK DETECTED/, 'no second alarm after the accept');
  } finally {
    await pilot.close();
  }
});
