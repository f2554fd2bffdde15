/**
 * Operator recover/restore against hostile input, with real processes (OPR-01..09,
 * OPR-11, OPR-16, FI-20; decisions D6, D11; gaps A1/A3/C4/C7): a shard of another key (from a second
 * stack), a corrupted shard, a value ≥ the group order, ids out of range, the same shard
 * twice, more shards than needed, callers without the restore role, a restore on a healthy
 * Nexus, a Nexus killed after 1 of 2 shards, two shards submitted at once, the memory
 * backend. Each refusal is a stable error and changes nothing; Nexus never runs with a
 * wrong key and Keepers are never written with one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, TD } from '../helpers/stack.js';
import { waitFor } from '../helpers/key-faults.js';
import { KeeperClient } from '../../src/keeper/client.js';
import { authorizeIf, WorkloadX509Source } from '../../src/spiffe/index.js';
import type { Share } from '../../src/crypto/index.js';
import type { NexusClient } from '../../src/sdk/index.js';
import { NexusApiError } from '../../src/sdk/errors.js';

let a: Stack; // the stack under test
let b: Stack; // a second deployment (another key)
let aShards: Share[] = [];
let bShards: Share[] = [];

before(async () => {
  const identities = {
    'nexus-probe': `spiffe://${TD}/spike/nexus/probe`,
    workload: `spiffe://${TD}/workload/app`,
  };
  [a, b] = await Promise.all([Stack.start({ identities }), Stack.start({})]);
  aShards = await (await a.client('recover')).recover();
  bShards = await (await b.client('recover')).recover();
  await (await a.client('pilot')).putSecret('opr/marker', { v: 'marker-value' });
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

type RawPost = { postBytes(route: string, action: string | undefined, body: Buffer, o: { idempotent: boolean }): Promise<Buffer> };

/** Posts a raw restore body (bypasses the SDK's own argument checks). */
async function rawRestore(c: NexusClient, body: unknown): Promise<{ collected: number; remaining: number; restored: boolean }> {
  const t = (c as unknown as { transport: RawPost }).transport;
  const raw = await t.postBytes('/v1/operator/restore', undefined, Buffer.from(JSON.stringify(body)), { idempotent: false });
  return JSON.parse(raw.toString('utf8')) as { collected: number; remaining: number; restored: boolean };
}

async function refused(p: Promise<unknown>): Promise<NexusApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof NexusApiError) return e;
    throw e;
  }
  assert.fail('expected a refusal');
}

const body = (s: Share): { id: number; shard: number[] } => ({ id: s.id, shard: [...s.value] });

async function keeperShares(st: Stack): Promise<Array<string | null>> {
  const source = await WorkloadX509Source.open({ endpoint: st.socket('nexus-probe'), timeoutMs: 10_000 });
  const kc = new KeeperClient({ source, authorizeKeeper: authorizeIf((id) => id.path.startsWith('/spike/keeper')), timeoutMs: 15_000, shareRecipients: [] });
  try {
    return await Promise.all(st.keeperUrls.map((u) => kc.fetchShare(u).then((w) => Buffer.from(w.value).toString('hex'), () => null)));
  } finally {
    await kc.close();
    source.close();
  }
}

/** Each Keeper's share (hex), once every Keeper holds one (or after 60 s: what they hold then). */
async function untilEveryKeeperHolds(st: Stack): Promise<Array<string | null>> {
  const deadline = Date.now() + 60_000;
  let held = await keeperShares(st);
  while (held.some((v) => v === null) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    held = await keeperShares(st);
  }
  return held;
}

test('OPR-01: recover only for the recover role (superuser, workload, restore → 401); the recover role gets n shards', async () => {
  assert.equal(aShards.length, 3);
  assert.deepEqual(aShards.map((s) => s.id), [1, 2, 3]);
  for (const id of ['pilot', 'workload', 'restore', 'lite']) {
    const e = await refused((await a.client(id)).recover());
    assert.equal(e.status, 401, id);
    assert.equal(e.code, 'access_unauthorized');
  }
});

test('OPR-03 / gaps A1: restore on a healthy Nexus never replaces its key; a bad shard is refused there too', async () => {
  const restore = await a.client('restore');
  const before = await keeperShares(a);
  // Another deployment's shard: refused (400), nothing changes.
  const e = await refused(restore.restore(bShards[0]!));
  assert.equal(e.status, 400);
  assert.equal(e.wireErr, 'api_bad_request');
  // A valid shard of this key: SPIKE's "already restored" acknowledgement, nothing stored.
  const ack = await restore.restore(aShards[1]!);
  assert.deepEqual({ ...ack }, { collected: 2, remaining: 0, restored: true });
  assert.deepEqual({ ...(await (await a.client('pilot')).getSecret('opr/marker')) }, { v: 'marker-value' });
  assert.deepEqual(await keeperShares(a), before, 'Keepers untouched');
});

test('kill Nexus and every Keeper; restart them empty (not ready)', async () => {
  await a.killNexus();
  for (let i = 1; i <= 3; i++) await a.killKeeper(i);
  for (let i = 1; i <= 3; i++) await a.startKeeper(i);
  await a.startNexus();
  await assert.rejects((await a.client('pilot')).listSecrets(), (e: unknown) => e instanceof NexusApiError && e.code === 'state_not_ready');
});

test('OPR-02: restore as superuser, recover role or a workload → 401, not counted', async () => {
  for (const id of ['pilot', 'recover', 'workload', 'lite']) {
    const e = await refused((await a.client(id)).restore(aShards[0]!));
    assert.equal(e.status, 401, id);
    assert.equal(e.code, 'access_unauthorized');
  }
});

test('OPR-05/OPR-06/OPR-08/OPR-09: another key, corrupted, value ≥ n, bad ids → 400 each, not counted, Nexus alive and not ready', async () => {
  const restore = await a.client('restore');
  const corrupted = { id: 1, value: Uint8Array.from(aShards[0]!.value) };
  corrupted.value[0]! ^= 0x40;
  const hostile: Array<[string, unknown]> = [
    ['other deployment, id 1', body(bShards[0]!)],
    ['other deployment, id 2', body(bShards[1]!)],
    ['corrupted', body(corrupted)],
    ['right value, wrong id', { id: 2, shard: [...aShards[0]!.value] }],
    ['value ≥ group order', { id: 1, shard: Array(32).fill(255) }],
    ['id 0', { id: 0, shard: [...aShards[0]!.value] }],
    ['id -1', { id: -1, shard: [...aShards[0]!.value] }],
    ['id n+1', { id: 4, shard: [...aShards[0]!.value] }],
    ['id 1001', { id: 1001, shard: [...aShards[0]!.value] }],
    ['id 1.5', { id: 1.5, shard: [...aShards[0]!.value] }],
    ['id "1"', { id: '1', shard: [...aShards[0]!.value] }],
    ['all-zero shard', { id: 1, shard: Array(32).fill(0) }],
    ['31 bytes', { id: 1, shard: Array(31).fill(7) }],
  ];
  for (const [label, b] of hostile) {
    const e = await refused(rawRestore(restore, b));
    assert.equal(e.status, 400, label);
    assert.equal(e.wireErr, 'api_bad_request', label);
  }
  // Nothing was counted: the first good shard is "1 of 2".
  const st = await restore.restore(aShards[0]!);
  assert.deepEqual({ ...st }, { collected: 1, remaining: 1, restored: false });
  // OPR-04: the same shard again → acknowledged, not double-counted.
  const again = await restore.restore(aShards[0]!);
  assert.deepEqual({ ...again }, { collected: 1, remaining: 1, restored: false });
  // Hostile after one good: still refused, the good one is kept.
  assert.equal((await refused(restore.restore(bShards[2]!))).status, 400);
  await assert.rejects((await a.client('pilot')).listSecrets(), (e: unknown) => e instanceof NexusApiError && e.code === 'state_not_ready');
  assert.deepEqual(await keeperShares(a), [null, null, null], 'Keepers never written by a refused shard');
});

test('FI-20: Nexus killed after 1 of 2 shards → the collected shard is gone after restart; Keepers untouched', async () => {
  await a.killNexus();
  await a.startNexus();
  assert.deepEqual(await keeperShares(a), [null, null, null], 'no partial key reached the Keepers');
  const restore = await a.client('restore');
  // OPR-11: two different shards at the same moment → exactly one reconstruction.
  const rebuilt = (): number => a.logs('nexus').split('root key restored by operator').length - 1;
  const rebuiltBefore = rebuilt();
  const [r2, r3] = await Promise.all([restore.restore(aShards[1]!), restore.restore(aShards[2]!)]);
  const results = [r2, r3].map((r) => ({ ...r })).sort((x, y) => x.collected - y.collected);
  // Had the shard of before the kill survived, the first of these would already complete.
  assert.deepEqual(results, [
    { collected: 1, remaining: 1, restored: false },
    { collected: 2, remaining: 0, restored: true },
  ]);
  assert.equal(rebuilt() - rebuiltBefore, 1, 'one reconstruction');
  assert.deepEqual({ ...(await (await a.client('pilot')).getSecret('opr/marker')) }, { v: 'marker-value' });
});

test('OPR-07: more shards than needed → acknowledged, nothing changes; another key still refused', async () => {
  const restore = await a.client('restore');
  const extra = await restore.restore(aShards[0]!);
  assert.deepEqual({ ...extra }, { collected: 2, remaining: 0, restored: true });
  assert.equal((await refused(restore.restore(bShards[0]!))).status, 400);
  const held = await untilEveryKeeperHolds(a);
  assert.deepEqual(held, aShards.map((s) => Buffer.from(s.value).toString('hex')), 'Keepers hold this key\'s shares');
  // The other deployment is unaffected by all of this.
  assert.equal((await (await b.client('recover')).recover()).length, 3);
});

test('OPR-01 memory backend: recover and restore → 400', async () => {
  const m = await Stack.start({ backend: 'memory' });
  try {
    const e1 = await refused((await m.client('recover')).recover());
    assert.equal(e1.status, 400);
    const e2 = await refused((await m.client('restore')).restore(aShards[0]!));
    assert.equal(e2.status, 400);
  } finally {
    await m.stop();
  }
});

/** No shard of either deployment in any of `st`'s process logs (hex, decimal list, base64). */
function assertNoShardLogged(st: Stack): void {
  const logs = st.logs();
  for (const s of [...aShards, ...bShards]) {
    assert.equal(logs.includes(Buffer.from(s.value).toString('hex')), false);
    assert.equal(logs.includes([...s.value].join(',')), false);
    assert.equal(logs.includes(Buffer.from(s.value).toString('base64')), false);
  }
}

test('logs: refusals name the caller, never the shard', () => {
  assertNoShardLogged(a);
  const refusals = a.logs('nexus').split('\n').filter((l) => l.includes('restore shard refused'));
  assert.ok(refusals.length > 0);
  for (const l of refusals) assert.match(l, /spike\/pilot\/role\/restore/, 'the refusal names the caller');
});

/** Retries `f` while Nexus answers `state_not_ready` (at most 60 s). */
async function untilReady<T>(f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (!(e instanceof NexusApiError && e.code === 'state_not_ready') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test('OPR-16: restore completes while every Keeper is down → Nexus serves once the rollback check stops waiting for them; the Keepers get their shares when they return', async () => {
  await a.killNexus();
  for (let i = 1; i <= 3; i++) await a.killKeeper(i);
  // The rollback check waits this long for silent Keepers (30 s by default), then serves.
  await a.startNexus(1, { env: { SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '2s' } });
  const pilot = await a.client('pilot');
  await assert.rejects(pilot.listSecrets(), (e: unknown) => e instanceof NexusApiError && e.code === 'state_not_ready');
  const restore = await a.client('restore');
  assert.deepEqual({ ...(await restore.restore(aShards[2]!)) }, { collected: 1, remaining: 1, restored: false });
  assert.deepEqual({ ...(await restore.restore(aShards[0]!)) }, { collected: 2, remaining: 0, restored: true });
  // Ready with no Keeper reachable, once the rollback check gave up waiting for them: the key
  // is in Nexus, the push waits for the Keepers.
  assert.deepEqual({ ...(await untilReady(() => pilot.getSecret('opr/marker'))) }, { v: 'marker-value' });
  // The warning is written just before Nexus serves; its line may reach us after the answer.
  await waitFor('the rollback check\'s warning', () => /rollback check: some keepers did not answer/.test(a.logs('nexus')), 10_000);
  await pilot.putSecret('opr/while-keepers-down', { v: 'written' });
  for (let i = 1; i <= 3; i++) await a.startKeeper(i);
  const held = await untilEveryKeeperHolds(a);
  assert.deepEqual(held, aShards.map((s) => Buffer.from(s.value).toString('hex')), 'each returning Keeper holds its share of the restored key');
  assert.ok(a.nexusProcess()?.exitCode === null, 'Nexus still running');
  assertNoShardLogged(a); // this Nexus collected the shards and pushed the shares
  // Nexus restarted alone now recovers from the Keepers that were pushed to.
  await a.killNexus();
  await a.startNexus();
  assert.deepEqual({ ...(await untilReady(async () => (await a.client('pilot')).getSecret('opr/while-keepers-down'))) }, { v: 'written' });
  assertNoShardLogged(a);
});
