/**
 * The key lifecycle on a real PostgreSQL server (issue 16 acceptance), one stack for all:
 *  - PG-REFRESH: `spike operator refresh-shares` under write load moves every Keeper to a new
 *    epoch, old shards are refused; then a kill -9 of Nexus after every Keeper acknowledged its
 *    pending share (SPIKE_NEXUS_TEST_CRASH_AT=after-pending-push): Nexus finishes the move at
 *    recovery, every acknowledged write reads back;
 *  - PG-MOVE-DBCRASH-<step>: the database server is killed (`pg_ctl -m immediate`: no
 *    checkpoint, WAL replayed at start) while a refresh holds at a step (test-only hold point),
 *    the move is released against the dead database, the server comes back: Nexus serves
 *    again by itself on one epoch (before the commit the move fails on the store error and
 *    the current sharing stays; after it the move completes), and after a kill -9 of Nexus
 *    it recovers (finishing a move that failed before its commit: every Keeper holds its
 *    pending share); no acknowledged write lost;
 *  - PG-ROLLBACK: the database restored from an older `pg_dump` while the Keepers stayed up
 *    (their anchor ahead of the store's counter) → Nexus refuses to serve (503
 *    `state_rollback_detected`, readyz `rollback`) until `spike operator accept-rollback`;
 *    then it serves the older data.
 * PG-ROLLBACK runs second, before the PG-MOVE-DBCRASH moves: the Nexus that PG-REFRESH kills
 * inside a move leaves its move lease in the store (src/nexus/keys/move-lease.ts), and a move
 * right after it waits that out; PG-ROLLBACK starts no move. The lease TTL is 3 s here
 * (SPIKE_NEXUS_MOVE_LEASE_TTL; 15 s by default): one Nexus, so no other process competes for
 * it, and every wait for a dead move's lease (leaseFree below) is a TTL long.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Stack, TD } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { parsePrometheusText } from '../helpers/prom-text.js';
import { NexusApiError } from '../../src/sdk/errors.js';
import { MOVE_LEASE_RECORD } from '../../src/nexus/keys/move-lease.js';
import {
  PROBE_IDENTITY, allWritesReadable, stopLoads, epochAbove, holdEnv, keeperEpoch, keeperEpochs, recoverTo, release, setEnv, shardVerifies,
  waitFor, waitHeld, writeLoad,
} from '../helpers/key-faults.js';

const run = promisify(execFile);
const holds = tempDir('spike-pg-hold-');
const nexusEnv: Record<string, string> = {};
const written = new Map<string, string>();
let stack: Stack;

before(async () => {
  stack = await Stack.start({
    backend: 'postgres', keepers: 3, threshold: 2, ops: true, nexusEnvOf: { 1: nexusEnv },
    nexusEnv: { SPIKE_NEXUS_MOVE_LEASE_TTL: '3s' },
    identities: { [PROBE_IDENTITY]: `spiffe://${TD}/spike/nexus/probe` },
  });
});

after(async () => {
  await stopLoads();
  await stack?.stop();
});

/** kill -9 of Nexus, started again with `env`, ready once it recovered from the Keepers. */
async function restartNexus(env: Record<string, string>): Promise<void> {
  setEnv(nexusEnv, env);
  await stack.killNexus();
  await stack.startNexus();
  await stack.waitReady();
}

/** Every Keeper on one epoch (a leftover pending share of an abandoned move allowed); returns it. */
async function keepersAgree(): Promise<number> {
  let e = 0;
  await waitFor('every Keeper on one epoch', async () => {
    const all = await keeperEpochs(stack);
    e = all[0]?.epoch ?? 0;
    return all.every((k) => k !== null && k.epoch === e);
  });
  return e;
}

test('PG-REFRESH: refresh under write load on postgres, old shards refused; kill -9 of Nexus after-pending-push finishes the move at recovery', async () => {
  const from = await keeperEpoch(stack);
  const shards = await recoverTo(stack, path.join(stack.dir, 'shards-pg-refresh'));
  const load = writeLoad(stack, written, 'pg-refresh');
  await waitFor('a few acknowledged writes', () => load.acked() > 0);
  const r = await stack.spike(['operator', 'refresh-shares']);
  assert.equal(r.code, 0, r.stderr);
  const mid = await epochAbove(stack, from);
  assert.equal(await shardVerifies(stack, shards[0]!), false, 'an old-epoch shard is refused');

  await restartNexus({ SPIKE_NEXUS_TEST_CRASH_AT: 'after-pending-push' });
  const crashed = await stack.spike(['operator', 'refresh-shares']);
  assert.notEqual(crashed.code, 0, 'Nexus died in the middle of the move');
  await restartNexus({});
  const m = load.acked();
  await waitFor('writes acknowledged after the recovery', () => load.acked() > m);
  await load.stop();
  await allWritesReadable(stack, written);
  await epochAbove(stack, mid); // every Keeper had acknowledged: the move is finished at recovery
});

/** A record of the `spike_system` table, read straight from the database. */
async function systemRecord(key: string): Promise<Buffer | undefined> {
  const c = new pg.Client({ connectionString: stack.postgres!.connectionString });
  await c.connect();
  try {
    return (await c.query<{ value: Buffer }>('SELECT value FROM spike_system WHERE key = $1', [key])).rows[0]?.value;
  } finally {
    await c.end();
  }
}

/** The store's commit counter (the anchor record's bytes 1..9; the MAC is Nexus's business). */
async function storeCounter(): Promise<number> {
  const v = await systemRecord('commit_anchor');
  return v ? Number(v.readBigUInt64BE(1)) : 0;
}

/** Waits until no sharing-move lease is held (the record: owner ‖ expiry in ms, u64 BE; src/store/key-custody.ts). */
async function leaseFree(): Promise<void> {
  await waitFor('the sharing-move lease free', async () => {
    const v = await systemRecord(MOVE_LEASE_RECORD);
    return v === undefined || v.length !== 24 || Number(v.readBigUInt64BE(16)) <= Date.now();
  });
}

/**
 * Waits until every Keeper acknowledged an anchor at least as high as the store's counter,
 * and that counter is above `above` (postgres advances it after writes, debounced: writes
 * just acknowledged may not have moved it yet).
 */
async function anchorReachedKeepers(above = 0): Promise<number> {
  let reached = 0;
  await waitFor('the store anchor at every Keeper', async () => {
    const want = await storeCounter();
    if (want <= above) return false;
    reached = want;
    const m = parsePrometheusText(await (await fetch(`${stack.nexusOpsUrl()}/metrics`)).text());
    const acked = [1, 2, 3].map((k) => m.samples.find((s) => s.name === 'spike_keeper_anchor_counter' && s.labels['keeper'] === String(k))?.value ?? 0);
    return want > 0 && acked.every((a) => a >= want);
  });
  return reached;
}

test('PG-ROLLBACK: the database restored from an older dump while the Keepers stayed up is refused until accept-rollback', async () => {
  const pgs = stack.postgres!;
  const c = await stack.client('pilot');
  for (let i = 0; i < 3; i++) await c.putSecret(`rb/old/${i}`, { v: `old-${i}` });
  await anchorReachedKeepers();
  const dump = path.join(tempDir('spike-pg-dump-'), 'older.sql');
  const conn = ['-h', '127.0.0.1', '-p', String(pgs.port), '-U', 'postgres'];
  await run(path.join(pgs.binDir, 'pg_dump'), [...conn, '-d', 'spike', '-f', dump]);
  const atDump = await storeCounter(); // at least the dump's counter
  for (let i = 0; i < 3; i++) await c.putSecret(`rb/new/${i}`, { v: `new-${i}` });
  await anchorReachedKeepers(atDump); // the newer writes are covered by an anchor the Keepers hold

  await stack.killNexus();
  await pgs.psql('DROP DATABASE spike WITH (FORCE)');
  await pgs.psql('CREATE DATABASE spike');
  await run(path.join(pgs.binDir, 'psql'), [...conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'spike', '-f', dump]);
  fs.rmSync(dump);

  await stack.startNexus();
  await waitFor('readyz naming rollback', async () => {
    const r = await fetch(`${stack.nexusOpsUrl()}/readyz`);
    return r.status === 503 && (await r.text()).includes('"rollback"');
  }).catch((e: unknown) => {
    const why = stack.logs('nexus').split('\n').filter((l) => /rollback|anchor/i.test(l)).join('\n');
    throw new Error(`${String(e)}; Nexus said:\n${why}`);
  });
  const refused = await stack.client('pilot');
  await assert.rejects(refused.getSecret('rb/old/0'), (e: unknown) => e instanceof NexusApiError && e.status === 503 && e.wireErr === 'state_rollback_detected');
  const get = await stack.spike(['secret', 'get', 'rb/old/0']);
  assert.notEqual(get.code, 0);
  assert.match(get.stderr, /state rollback detected/);

  const ok = await stack.spike(['operator', 'accept-rollback']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Rollback accepted/);
  await stack.waitReady();
  const after = await stack.client('pilot');
  assert.equal((await after.getSecret('rb/old/2'))['v'], 'old-2');
  await assert.rejects(after.getSecret('rb/new/0'), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');
  await allWritesReadable(stack, written); // every write before the dump is in it
  // Re-anchored above the Keepers: a restart serves without a new refusal.
  await after.putSecret('rb/after', { v: '1' });
  await anchorReachedKeepers();
  await restartNexus({});
  assert.equal((await (await stack.client('pilot')).getSecret('rb/after'))['v'], '1');
});

for (const step of ['after-pending-push', 'after-commit'] as const) {
  test(`PG-MOVE-DBCRASH-${step}: the database killed while a refresh holds ${step}, then back: Nexus serves again, the move finished or abandoned, no acknowledged write lost`, async (t) => {
    const from = await keeperEpoch(stack);
    // A refresh an operator asks for waits only briefly for a held move lease (then 409): the
    // Nexus PG-REFRESH killed mid-move may have left one, free within its TTL.
    await leaseFree();
    await restartNexus(holdEnv(holds, step));
    const load = writeLoad(stack, written, `pg-db-${step}`);
    await waitFor('a few acknowledged writes', () => load.acked() > 0);
    const c = await stack.client('pilot', { timeoutMs: 180_000 });
    const moved = c.refreshShares().then((x) => x.epoch, (e: unknown) => e);
    await waitHeld(holds, step);
    await stack.postgres!.down('immediate'); // a database crash inside the move
    release(holds, step);
    const r = await moved;
    if (step === 'after-commit') assert.equal(typeof r, 'number', `the commit landed before the crash: the move completes (${String(r)})`);
    else assert.ok(r instanceof NexusApiError, `the move cannot commit against a dead database (${String(r)})`);
    await stack.postgres!.up();
    const n = load.acked();
    await waitFor('writes acknowledged again once the database is back', () => load.acked() > n);
    const live = await keepersAgree();
    if (typeof r === 'number') assert.equal(live, r);
    else assert.equal(live, from, 'the move was not committed: the current sharing stays');

    // kill -9 of Nexus: it recovers from the Keepers and settles the pending move if one is left.
    await restartNexus({});
    const m = load.acked();
    await waitFor('writes acknowledged after the recovery', () => load.acked() > m);
    await load.stop();
    await allWritesReadable(stack, written);
    const settled = await keepersAgree();
    t.diagnostic(`move answered ${typeof r === 'number' ? `epoch ${r}` : 'an error'}; Keepers on ${live} before and ${settled} after the Nexus restart (from ${from})`);
    // A move that failed on the store error left its pending record live and every Keeper
    // holding its pending share: the restart finishes it. A completed move stays.
    if (typeof r === 'number') assert.equal(settled, live);
    else assert.ok(settled > live, `finished at recovery: ${settled} > ${live}`);
    // Whichever epoch the Keepers settled on is the one the store records: one more refresh works from it,
    // once the move lease is free: the move ran into the dead database, so its release did not
    // land, and the lease holds until its TTL (a refresh meanwhile is refused: move_in_progress).
    await leaseFree();
    const again = await stack.spike(['operator', 'refresh-shares']);
    assert.equal(again.code, 0, again.stderr);
    await epochAbove(stack, settled);
  });
}

test('PG-MOVE-LEASE-HELD: a refresh asked for while another process holds the move lease is refused at once with the lock named (not a client timeout); nothing moves', async () => {
  await leaseFree();
  const from = await keeperEpoch(stack);
  // The record another Nexus holding (or having died holding) the lease leaves: owner ‖ expiry ms (u64 BE).
  const rec = Buffer.alloc(24, 0xab);
  rec.writeBigUInt64BE(BigInt(Date.now() + 120_000), 16);
  const c = new pg.Client({ connectionString: stack.postgres!.connectionString });
  await c.connect();
  try {
    await c.query('INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [MOVE_LEASE_RECORD, rec]);
    const r = await stack.spike(['operator', 'refresh-shares']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /holds the move lock .*Try again in a few seconds\./, r.stderr);
    assert.ok(!/Cannot reach/.test(r.stderr), r.stderr);
  } finally {
    rec.writeBigUInt64BE(0n, 16); // expired: free
    await c.query('UPDATE spike_system SET value = $2 WHERE key = $1', [MOVE_LEASE_RECORD, rec]);
    await c.end();
  }
  assert.equal(await keeperEpoch(stack), from, 'no move ran');
  const again = await stack.spike(['operator', 'refresh-shares']);
  assert.equal(again.code, 0, again.stderr);
  await epochAbove(stack, from);
});
