/**
 * The postgres commit counter (rollback detection) on a real server, two store instances on
 * one database as two Nexus would be: every `current()` advances it, concurrent advances from
 * both never hand out the same counter, the stored record ends at the highest one and never
 * moves back (compare-and-swap: a swap that lost to the other instance reads again);
 * `advance(min)` jumps to at least `min`; writes notify only while armed. A planted record
 * is handed to the sealer and replaced by what it seals (ATTACK planted anchor counter).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { ANCHOR_HISTORY_KEEP, ANCHOR_RECORD, MAX_ANCHOR_COUNTER, anchorCounter, anchorNonce, anchorPrefix } from '../anchor.js';
import pg from 'pg';
import { AnchorKey } from '../../nexus/anchor/mac.js';
import { AnchorChain, type RuntimeRollback } from '../../nexus/anchor/sealer.js';
import { createLogger } from '../../lib/log.js';
import { PostgresAnchor } from './anchor.js';
import { openPostgresStore } from './store.js';
import { startPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';

let server: TestPostgres | undefined;
after(async () => {
  await server?.stop();
});

const seal = (stored: Uint8Array | null, min: bigint): Uint8Array => {
  const c = (anchorCounter(stored) ?? 0n) + 1n;
  return Buffer.concat([anchorPrefix(c > min ? c : min), Buffer.alloc(32, 3)]);
};

test('postgres anchor: monotonic across two instances; advance(min); notifications only while armed', async () => {
  server = await startPostgres();
  const url = await server.createDatabase();
  const a = await openPostgresStore({ connectionString: url });
  const b = await openPostgresStore({ connectionString: url });
  const root = RootKey.generate();
  await a.unlock(root);
  await b.unlock(root);
  try {
    assert.equal(await a.anchor.read(), null);
    let notes = 0;
    a.anchor.onWrite = () => notes++;
    await a.putSecret('x/1', { k: 'v' });
    assert.equal(notes, 0, 'unarmed: no notification');
    a.anchor.arm(seal);
    b.anchor.arm(seal);
    await a.putSecret('x/2', { k: 'v' });
    assert.equal(notes, 1);

    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).anchor.current()));
    const counters = got.map((r) => anchorCounter(r));
    assert.equal(new Set(counters.map(String)).size, 20, 'no counter handed out twice');
    const max = counters.reduce((m, c) => ((c ?? 0n) > (m ?? 0n) ? c : m), 0n);
    assert.equal(anchorCounter(await b.anchor.read()), max, 'the stored record is the highest, whatever the commit order');

    const held = await a.anchor.recorded(counters.map((c) => c!));
    assert.equal(held.size, 20, 'every swapped-in record is in the history');
    assert.deepEqual(held.get(max!), Uint8Array.from(anchorNonce(await b.anchor.read())!), 'the stored record\'s nonce');

    const jumped = await b.anchor.advance(1000n);
    assert.equal(anchorCounter(jumped), 1000n);
    const next = await a.anchor.advance(5n);
    assert.equal(anchorCounter(next), 1001n, 'never back below the stored counter');
    assert.equal(anchorCounter(await a.anchor.read()), 1001n);
    assert.deepEqual((await b.anchor.recorded([1001n])).get(1001n), Uint8Array.from(anchorNonce(next)!));
    // A jump past ANCHOR_HISTORY_KEEP (an accepted rollback) leaves nothing older on record.
    const far = await a.anchor.advance(1001n + ANCHOR_HISTORY_KEEP + 1n);
    const left = await b.anchor.recorded([1000n, 1001n, anchorCounter(far)!]);
    assert.deepEqual([...left.keys()], [anchorCounter(far)]);
  } finally {
    await a.close();
    await b.close();
    root.destroy();
  }
});

test('ATTACK planted anchor counter (postgres): the store hands a planted record to the sealer and swaps in what it seals, even a lower counter (concurrent swaps: the first test)', async () => {
  server ??= await startPostgres();
  const url = await server.createDatabase();
  const a = await openPostgresStore({ connectionString: url });
  const root = RootKey.generate();
  await a.unlock(root);
  try {
    const plantedRecord = Buffer.concat([anchorPrefix(MAX_ANCHOR_COUNTER), Buffer.alloc(32, 9)]);
    await a.putSystem(ANCHOR_RECORD, plantedRecord);
    const seen: (Uint8Array | null)[] = [];
    // Nexus's sealer does not trust the planted record (it does not verify): it continues from 7.
    a.anchor.arm((stored) => { seen.push(stored); return Buffer.concat([anchorPrefix(7n), Buffer.alloc(32, 3)]); });
    assert.equal(anchorCounter(await a.anchor.current()), 7n);
    assert.deepEqual(seen.map((r) => (r ? Buffer.from(r).equals(plantedRecord) : null)), [true], 'the sealer saw the stored record');
    assert.equal(anchorCounter(await a.anchor.read()), 7n, 'the planted record is replaced, not kept for its larger prefix');
  } finally {
    await a.close();
    root.destroy();
  }
});

test('postgres anchor: an advance whose read is answered late, after a fresher read of another connection was applied, is no rollback (several instances, one slow answer)', async () => {
  server ??= await startPostgres();
  const url = await server.createDatabase();
  const migrated = await openPostgresStore({ connectionString: url }); // the schema
  await migrated.close();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  let lateNextRead = 0;
  // The real statements on a real server; one read's answer is handed back late.
  const query = async <R extends pg.QueryResultRow>(cfg: pg.QueryConfig<unknown[]>): Promise<pg.QueryResult<R>> => {
    const late = cfg.text.includes('FROM spike_system WHERE key = $1') ? lateNextRead : 0;
    if (late) lateNextRead = 0;
    const r = await pool.query<R>(cfg);
    if (late) await new Promise((res) => setTimeout(res, late));
    return r;
  };
  const root = RootKey.generate();
  const key = new AnchorKey(root);
  const refusals: RuntimeRollback[] = [];
  const silent = createLogger({ component: 't', level: 'silent' });
  const mk = (): AnchorChain => new AnchorChain({ key, logger: silent, committed: 0n, onRollback: (c) => { refusals.push(c); } });
  const a = new PostgresAnchor(query);
  const b = new PostgresAnchor(query);
  const ca = mk();
  const cb = mk();
  a.arm(ca.seal, ca.noteCommitted, ca.mark);
  b.arm(cb.seal, cb.noteCommitted, cb.mark);
  try {
    await a.advance(0n); // 1
    lateNextRead = 150;
    const pushRound = a.advance(0n); // its read sees 1 and answers late
    await new Promise((res) => setTimeout(res, 30));
    await b.advance(0n); // the other instance moves the record to 2
    ca.check(await a.read()); // this instance's periodic look, answered first: 2
    const record = await pushRound; // the swap sealed on 1 failed; read again and swapped in 3
    assert.deepEqual(refusals, []);
    assert.equal(anchorCounter(record), 3n);
    assert.equal(ca.committed, 3n);
  } finally {
    await pool.end();
    key.destroy();
    root.destroy();
  }
});
