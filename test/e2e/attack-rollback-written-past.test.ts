/**
 * attack-rollback-race-written-past, end to end: two worker processes on one SQLite file. An
 * older copy is put back right after writes served by one worker, and the other worker, which
 * never read those writes, then writes past their counter before any Keeper status could show
 * it the newer anchor (the probe is slowed to a minute here). The counters alone then pass
 * every check: the writer's next look finds the store ahead of what it wrote, and the other
 * worker's anchor push would replace the Keepers' record of the newer state. Every anchor
 * record now carries a nonce and the store keeps recent records by counter, so the history the
 * copy grew holds other records at those counters (`diverged`): both workers refuse, and the
 * Keepers keep the evidence across a `kill -9` and restart. (Unit cases:
 * src/nexus/anchor/history.test.ts.)
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

/** A one-connection client served by worker `want`. */
async function pinnedTo(stack: Stack, want: number): Promise<RawClient> {
  for (let i = 0; i < 40; i++) {
    const c = await rawClient(stack, 'pilot', { connections: 1, keepAliveTimeoutMs: 120_000 });
    if ((await workerOf(stack, c)) === want) return c;
    await c.close();
  }
  throw new Error(`no connection reached worker ${want}`);
}

test('attack-rollback-race-written-past: an older copy written past one worker\'s counter by the other worker is refused by both, also after kill -9 and restart', async () => {
  const env = { SPIKE_NEXUS_WORKERS: '2', SPIKE_SYSTEM_LOG_LEVEL: 'INFO', SPIKE_NEXUS_KEEPER_PROBE_INTERVAL: '60s' };
  const stack = await Stack.start({ nexusEnv: env });
  stacks.push(stack);
  await waitFor(() => [1, 2].every((n) => new RegExp(`"worker":${n}[^\\n]*root key recovered from keepers`).test(stack.logs('nexus'))), 60_000, 'both workers');
  const writerClient = await rawClient(stack, 'pilot', { connections: 1, keepAliveTimeoutMs: 120_000 });
  let otherClient: RawClient | undefined;
  try {
    assert.equal((await writerClient.post(S, { path: 'app/x', values: { v: 'x' } })).status, 200);
    const writer = await workerOf(stack, writerClient);
    otherClient = await pinnedTo(stack, 3 - writer);
    const copy = path.join(tempDir('spike-rollback-past-'), 'older.db');
    const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
    assert.equal(b.code, 0, b.stderr);
    // Three batches through the writer, then the copy at once, then eight batches through the
    // other worker: past the writer's counter, before any Keeper status reaches it.
    for (let i = 0; i < 3; i++) assert.equal((await writerClient.post(S, { path: `app/w-${i}`, values: { v: 'w' } })).status, 200);
    const src = new Database(copy, { readonly: true });
    await src.backup(path.join(stack.dir, 'data', 'spike.db'));
    src.close();
    for (let i = 0; i < 8; i++) await otherClient.post(S, { path: `app/o-${i}`, values: { v: 'o' } });

    const alarm = (w: number): RegExp => new RegExp(`"worker":${w}[^\\n]*STATE ROLLBACK DETECTED`);
    const rollbackLines = (): string => stack.logs('nexus').split('\n').filter((l) => /rollback|ROLLBACK|evidence/.test(l)).join('\n');
    await waitFor(() => alarm(1).test(stack.logs('nexus')) && alarm(2).test(stack.logs('nexus')), 60_000, `both workers to detect the rollback:\n${rollbackLines()}`);
    assert.match(stack.logs('nexus'), /"cause":"diverged"/, 'the history told it, not the counters');
    assert.equal((await writerClient.post(`${S}?action=get`, { path: 'app/x' })).status, 503);
    assert.equal((await otherClient.post(`${S}?action=get`, { path: 'app/x' })).status, 503);

    // The Keepers hold the evidence: a kill -9 and restart refuses too.
    await writerClient.close();
    await otherClient.close();
    otherClient = undefined;
    await stack.killNexus('SIGKILL');
    await stack.startNexus();
    await waitFor(() => /STATE ROLLBACK DETECTED/.test(stack.logs('nexus')), 60_000, 'the start-up check to refuse');
    assert.doesNotMatch(stack.logs('nexus'), /rollback check passed/);
  } finally {
    await writerClient.close().catch(() => undefined);
    await otherClient?.close().catch(() => undefined);
  }
});
