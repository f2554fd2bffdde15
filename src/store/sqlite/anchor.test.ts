/**
 * The sqlite commit counter (rollback detection): unarmed writes leave it alone; armed, one
 * group-commit batch advances it once, inside the batch's transaction (a rolled-back batch
 * leaves it where it was); `advance(min)` jumps to at least `min`; the record survives a
 * reopen; `onWrite` fires after each committed batch.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { ANCHOR_HISTORY_KEEP, ANCHOR_RECORD_BYTES, anchorCounter, anchorNonce, anchorPrefix } from '../anchor.js';
import Database from 'better-sqlite3';
import { SqliteStore } from './store.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A stand-in sealer: prefix + 32 fixed bytes (Nexus's real MAC is tested in src/nexus/anchor). */
const seal = (stored: Uint8Array | null, min: bigint): Uint8Array => {
  const c = (anchorCounter(stored) ?? 0n) + 1n;
  return Buffer.concat([anchorPrefix(c > min ? c : min), Buffer.alloc(32, 7)]);
};

async function store(file?: string): Promise<{ s: SqliteStore; file: string; root: RootKey }> {
  const f = file ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spike-anchor-')), 'spike.db');
  if (!file) dirs.push(path.dirname(f));
  const s = new SqliteStore({ file: f });
  const root = RootKey.generate();
  await s.unlock(root);
  return { s, file: f, root };
}

test('sqlite anchor: unarmed writes do not move the counter', async () => {
  const { s, root } = await store();
  await s.putSecret('a/b', { k: 'v' });
  assert.equal(await s.anchor.read(), null);
  await s.close();
  root.destroy();
});

test('sqlite anchor: armed, one batch of writes advances the counter once; each later batch once more', async () => {
  const { s, root } = await store();
  let notified = 0;
  s.anchor.arm(seal);
  s.anchor.onWrite = () => notified++;
  // Queued in one turn: one group-commit batch.
  await Promise.all([s.putSecret('a/1', { k: 'v' }), s.putSecret('a/2', { k: 'v' }), s.putPolicy({ name: 'p', spiffeIdPattern: '^x$', pathPattern: '^a$', permissions: ['read'] })]);
  const first = await s.anchor.read();
  assert.equal(first?.length, ANCHOR_RECORD_BYTES);
  assert.equal(anchorCounter(first), 1n);
  assert.equal(notified, 1);
  await s.deleteSecret('a/1', []);
  assert.equal(anchorCounter(await s.anchor.read()), 2n);
  assert.equal(anchorCounter(await s.anchor.current()), 2n);
  await s.close();
  root.destroy();
});

test('sqlite anchor: a batch whose only write fails does not move it', async () => {
  const { s, root } = await store();
  s.anchor.arm(seal);
  await s.putSecret('a/1', { k: 'v' });
  await assert.rejects(s.putSecret('a/1', { k: 'w' }, { cas: 0 }), { code: 'store_cas_mismatch' });
  assert.equal(anchorCounter(await s.anchor.read()), 1n);
  await s.close();
  root.destroy();
});

test('sqlite anchor: a failing sealer rejects the whole batch (no write is acknowledged without its counter)', async () => {
  const { s, root } = await store();
  s.anchor.arm(() => {
    throw new Error('boom');
  });
  await assert.rejects(s.putSecret('a/1', { k: 'v' }));
  s.anchor.disarm();
  assert.equal(await s.getSecret('a/1'), null);
  await s.close();
  root.destroy();
});

test('sqlite anchor: advance(min) jumps to at least min, never back; the record survives a reopen', async () => {
  const { s, file, root } = await store();
  s.anchor.arm(seal);
  await s.putSecret('a/1', { k: 'v' });
  const r = await s.anchor.advance(50n);
  // The advance's own batch is a write too: at least 50.
  assert.ok((anchorCounter(r) ?? 0n) >= 50n);
  const before = anchorCounter(await s.anchor.read()) ?? 0n;
  await s.anchor.advance(3n);
  assert.ok((anchorCounter(await s.anchor.read()) ?? 0n) > before);
  const kept = await s.anchor.read();
  await s.close();
  const again = new SqliteStore({ file });
  assert.deepEqual(await again.anchor.read(), kept);
  await again.close();
  root.destroy();
});

test('sqlite anchor: advance before arm is refused', async () => {
  const { s, root } = await store();
  await assert.rejects(s.anchor.advance(1n), { code: 'store_locked' });
  await s.close();
  root.destroy();
});

test('sqlite anchor: each record\'s nonce is kept in the history by counter, in its batch, through the ring and its chunks; a jump past ANCHOR_HISTORY_KEEP leaves nothing older', async () => {
  const { s, root } = await store();
  s.anchor.arm(seal);
  const records: Uint8Array[] = [];
  for (let i = 1; i <= 150; i++) { // more than two rings' worth: chunks and the ring
    await s.putSecret(`a/${i % 7}`, { k: 'v' });
    records.push((await s.anchor.read())!);
  }
  const counters = records.map((r) => anchorCounter(r)!);
  assert.deepEqual(counters, Array.from({ length: 150 }, (_, i) => BigInt(i + 1)));
  const held = await s.anchor.recorded([...counters, 151n, 0n]);
  assert.equal(held.size, 150);
  for (const r of records) assert.deepEqual(held.get(anchorCounter(r)!), Uint8Array.from(anchorNonce(r)!), 'the stored record\'s nonce');
  // A jump (an accepted rollback) past ANCHOR_HISTORY_KEEP: nothing before it is on record.
  const far = await s.anchor.advance(ANCHOR_HISTORY_KEEP + 200n);
  const at = anchorCounter(far)!;
  assert.equal(at, ANCHOR_HISTORY_KEEP + 200n, 'one record per advance (never two in one transaction)');
  const after = await s.anchor.recorded([1n, 64n, 65n, 150n, at]);
  assert.deepEqual([...after.keys()], [at]);
  assert.deepEqual(after.get(at), Uint8Array.from(anchorNonce(far)!));
  await s.close();
  root.destroy();
});

test('sqlite anchor: a batch rolled back after its record was written never reports that record as committed', async () => {
  const { s, file, root } = await store();
  const told: (bigint | undefined)[] = [];
  s.anchor.arm(seal, (record) => told.push(anchorCounter(record)));
  await s.putSecret('a/1', { k: 'v' });
  await s.putSecret('a/2', { k: 'v' });
  // The history write of record 3 fails (as a full disk would): the whole batch rolls back.
  const raw = new Database(file);
  raw.exec("CREATE TRIGGER fail_three BEFORE INSERT ON system WHEN NEW.key = 'anchor_ring' AND length(NEW.value) = 72 BEGIN SELECT RAISE(ABORT, 'injected'); END");
  await assert.rejects(s.putSecret('a/3', { k: 'v' }));
  raw.exec('DROP TRIGGER fail_three');
  raw.close();
  await s.putSecret('a/4', { k: 'v' });
  assert.deepEqual(told, [1n, 2n, 3n], 'the rolled-back record 3 was not told; the next batch\'s 3 was');
  assert.equal(anchorCounter(await s.anchor.read()), 3n);
  await s.close();
  root.destroy();
});

test('sqlite anchor: counting that starts again below the history (an unverifiable record adopted as the base) clears it, so no counter holds two records', async () => {
  const { s, root } = await store();
  s.anchor.arm(seal);
  for (let i = 0; i < 70; i++) await s.putSecret(`a/${i % 3}`, { k: 'v' }); // 70: a chunk and a ring
  // The base adopted again from nothing (what a record sealed under another key counts as).
  s.anchor.arm((_stored, min) => Buffer.concat([anchorPrefix(min > 1n ? min : 1n), Buffer.alloc(32, 7)]));
  await s.putSecret('b/1', { k: 'v' });
  const one = await s.anchor.read();
  assert.equal(anchorCounter(one), 1n);
  const held = await s.anchor.recorded([1n, 2n, 65n, 70n]);
  assert.deepEqual([...held.keys()], [1n], 'only the new record is on record');
  assert.deepEqual(held.get(1n), Uint8Array.from(anchorNonce(one)!));
  await s.close();
  root.destroy();
});
