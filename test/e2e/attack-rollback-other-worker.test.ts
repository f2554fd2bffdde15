/**
 * attack-rollback-other-worker: with several worker processes on one SQLite file, each
 * worker's rollback chain knows only the anchor records it read or committed itself. An older
 * copy put back right after writes served by one worker was refused by that worker only; the
 * other, which had never read the newer records, kept serving the copy (with its older
 * policies), and its own writes then pushed lower counters over the Keepers' anchor, so a
 * restart served the copy too. Now the Keepers are the witness every worker shares: the worker
 * that detects first hands them a counter far above anything written, a status answer showing
 * a verified anchor above the store refuses (`behind_keepers`), and no push lowers a Keeper's
 * anchor. (The unit cases, each race on its own: src/nexus/anchor/evidence.test.ts.)
 */
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { rawClient, waitFor, workerOf, type RawClient } from './secrets-helpers.js';
import { PATHS } from '../../src/protocol/index.js';

const S = PATHS.secrets;
const P = PATHS.policy;
const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

/** The status of one request over a new connection (the kernel picks the worker). */
async function fresh(stack: Stack, route: string, body: unknown): Promise<number> {
  const c = await rawClient(stack, 'pilot');
  try {
    return (await c.post(route, body)).status;
  } finally {
    await c.close();
  }
}

test('attack-rollback-other-worker: an older copy put back after writes through one worker is refused by both workers, also after kill -9 and restart; accepted once', async () => {
  const env = { SPIKE_NEXUS_WORKERS: '2', SPIKE_SYSTEM_LOG_LEVEL: 'INFO' };
  const stack = await Stack.start({ nexusEnv: env });
  stacks.push(stack);
  await waitFor(() => [1, 2].every((n) => new RegExp(`"worker":${n}[^\\n]*root key recovered from keepers`).test(stack.logs('nexus'))), 60_000, 'both workers');
  const pinned = await rawClient(stack, 'pilot', { connections: 1, keepAliveTimeoutMs: 120_000 });
  try {
    assert.equal((await pinned.post(S, { path: 'app/x', values: { v: 'x' } })).status, 200);
    const copy = path.join(tempDir('spike-rollback-workers-'), 'older.db');
    const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
    assert.equal(b.code, 0, b.stderr);
    const writer = await workerOf(stack, pinned);
    const other = 3 - writer;
    // Writes after the backup, all through the one worker, then the copy at once.
    for (let i = 0; i < 3; i++) {
      assert.equal((await pinned.post(P, { name: `p-${i}`, spiffeidPattern: '^spiffe://spike\\.ist/nobody$', pathPattern: '^app/.*$', permissions: ['read'] })).status, 200);
    }
    const src = new Database(copy, { readonly: true });
    await src.backup(path.join(stack.dir, 'data', 'spike.db'));
    src.close();
    // The writer finds it at its next write; traffic on both workers meanwhile (writes on the
    // copy included: the other worker knew nothing newer than the copy).
    assert.equal((await pinned.post(S, { path: 'app/detect', values: { v: 'y' } })).status, 503);
    for (let i = 0; i < 6; i++) await fresh(stack, S, { path: `app/after-${i}`, values: { v: 'y' } });

    const alarm = (w: number): RegExp => new RegExp(`"worker":${w}[^\\n]*STATE ROLLBACK DETECTED`);
    await waitFor(() => alarm(writer).test(stack.logs('nexus')) && alarm(other).test(stack.logs('nexus')), 60_000,
      `both workers to detect the rollback (writer ${writer}):\n${stack.logs('nexus').split('\n').filter((l) => /rollback|ROLLBACK|evidence/.test(l)).join('\n')}`);
    for (let i = 0; i < 6; i++) assert.equal(await fresh(stack, `${S}?action=get`, { path: 'app/x' }), 503, 'every connection is refused, whichever worker takes it');

    // Nothing of the rollback was absorbed: a kill -9 and restart refuses too.
    await pinned.close();
    await stack.killNexus('SIGKILL');
    await stack.startNexus(); // its log starts afresh
    await waitFor(() => /STATE ROLLBACK DETECTED/.test(stack.logs('nexus')), 60_000, 'the start-up check to refuse');
    assert.equal(await fresh(stack, `${S}?action=get`, { path: 'app/x' }), 503);
    assert.doesNotMatch(stack.logs('nexus'), /rollback check passed/);

    const pilot = await rawClient(stack, 'pilot');
    try {
      const accepted = await pilot.post('/v1/operator/accept-rollback', {});
      assert.equal(accepted.status, 200, accepted.body);
      assert.match(accepted.body, /"accepted":true/);
    } finally {
      await pilot.close();
    }
    await waitFor(async () => (await fresh(stack, `${S}?action=get`, { path: 'app/x' })) === 200, 60_000, 'service after the accept');
    await waitFor(async () => {
      for (let i = 0; i < 6; i++) if ((await fresh(stack, `${S}?action=get`, { path: 'app/x' })) !== 200) return false;
      return true;
    }, 60_000, 'every worker serving the accepted store');
  } finally {
    await pinned.close().catch(() => undefined);
  }
});
