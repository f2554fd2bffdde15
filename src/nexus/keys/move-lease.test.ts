import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { SqliteStore } from '../../store/sqlite/store.js';
import { MemoryStore } from '../../store/memory.js';
import { MOVE_LEASE_BACKGROUND_WAIT_MS, MOVE_LEASE_RECORD, MOVE_LEASE_REQUEST_WAIT_MS, MOVE_LEASE_TTL_MS, takeMoveLease } from './move-lease.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Two stores on one SQLite file, as two processes have them; closed after `body`. */
async function withTwoStores(body: (a: SqliteStore, b: SqliteStore) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-move-lease-'));
  dirs.push(dir);
  const file = path.join(dir, 'spike.db');
  const root = RootKey.generate();
  const a = new SqliteStore({ file, shared: true });
  const b = new SqliteStore({ file, shared: true });
  try {
    await a.unlock(root);
    await b.unlock(root);
    await body(a, b);
  } finally {
    await a.close();
    await b.close();
    root.destroy();
  }
}

test('one sharing move at a time across processes on one store: the second gets move_in_progress until the first ends', async () => {
  await withTwoStores(async (a, b) => {
    const releaseA = await takeMoveLease(a, true, { ttlMs: 300 });
    assert.ok(releaseA);
    assert.equal(await takeMoveLease(b, true, { waitMs: 0 }), null);
    assert.equal(await takeMoveLease(a, true, { waitMs: 0 }), null, 'the same store, another move');
    // Renewed while held: still refused after several times its time to live.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await takeMoveLease(b, true, { waitMs: 0 }), null, 'renewed');
    releaseA();
    // The release is one write behind: wait for the lease record to say so.
    for (let i = 0; i < 100; i++) {
      const rec = await b.getSystem(MOVE_LEASE_RECORD);
      if (rec !== null && new DataView(rec.buffer, rec.byteOffset).getBigUint64(16) === 0n) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const releaseB = await takeMoveLease(b, true, { waitMs: 0 });
    assert.ok(releaseB);
    // A second move waits for the lease and gets it once the first ended.
    const waiting = takeMoveLease(a, true, { waitMs: 10_000 });
    releaseB();
    const got = await waiting;
    assert.ok(got);
    got();
  });
});

test('a lease left by a process that died expires: it blocks the next move for at most its time to live', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-move-lease-'));
  dirs.push(dir);
  const file = path.join(dir, 'spike.db');
  const root = RootKey.generate();
  const a = new SqliteStore({ file, shared: true });
  try {
    await a.unlock(root);
    const custody = a.custody();
    const owner = (n: number): Uint8Array => new Uint8Array(16).fill(n);
    // A live lease (long time to live, so a slow machine cannot see it expire) is refused to others.
    assert.equal(await custody.takeLease('held_lease', owner(1), 60_000), true);
    assert.equal(await custody.takeLease('held_lease', owner(2), 60_000), false);
    // A lease whose holder died (never renewed) is taken over once its 50 ms have passed.
    const t0 = Date.now();
    assert.equal(await custody.takeLease('test_lease', owner(1), 50), true);
    while (!(await custody.takeLease('test_lease', owner(2), 60_000))) await new Promise((r) => setTimeout(r, 10));
    assert.ok(Date.now() - t0 >= 50, 'not before its time to live');
    await custody.releaseLease('test_lease', owner(1)); // not the owner any more: nothing changes
    assert.equal(await custody.takeLease('test_lease', owner(3), 50), false);
  } finally {
    await a.close();
    root.destroy();
  }
});

test('a store no other process writes, or without key custody (memory), takes no lease: a lease left by a dead incarnation never delays it', async () => {
  const release = await takeMoveLease(new MemoryStore(), true);
  assert.ok(release);
  release();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-move-lease-'));
  dirs.push(dir);
  const root = RootKey.generate();
  const a = new SqliteStore({ file: path.join(dir, 'spike.db') });
  try {
    await a.unlock(root);
    assert.equal(await a.custody().takeLease(MOVE_LEASE_RECORD, new Uint8Array(16).fill(9), 60_000), true); // the dead incarnation's
    const mine = await takeMoveLease(a, false, { waitMs: 0 });
    assert.ok(mine, 'one process alone: no lease needed');
    mine();
  } finally {
    await a.close();
    root.destroy();
  }
});

test('a requested move gives up on a held lease within seconds, well inside a client\'s 10 s response-header timeout; a background move waits longer', async () => {
  // A lease held by another process (or left by a dead one for up to its TTL) must turn into a
  // quick move_in_progress answer for an operator's request, not a wait the client times out on.
  assert.ok(MOVE_LEASE_REQUEST_WAIT_MS <= 3_000, 'requested: a short wait');
  assert.ok(MOVE_LEASE_BACKGROUND_WAIT_MS > MOVE_LEASE_TTL_MS, 'background: outlasts a dead holder\'s lease');
  await withTwoStores(async (a, b) => {
    const held = await takeMoveLease(a, true);
    assert.ok(held);
    const started = performance.now();
    assert.equal(await takeMoveLease(b, true), null, 'the default (requested) wait ends with no lease');
    const waited = performance.now() - started;
    assert.ok(waited >= MOVE_LEASE_REQUEST_WAIT_MS - 50 && waited < MOVE_LEASE_REQUEST_WAIT_MS + 5_000, `waited ${Math.round(waited)} ms`);
    // A background move outwaits the holder: it gets the lease once it is released.
    const background = takeMoveLease(b, true, { waitMs: MOVE_LEASE_BACKGROUND_WAIT_MS });
    await new Promise((r) => setTimeout(r, MOVE_LEASE_REQUEST_WAIT_MS + 200));
    held();
    const got = await background;
    assert.ok(got, 'still waiting after the requested wait, then took it');
    got();
  });
});
