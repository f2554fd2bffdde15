/**
 * A sharing move an operator asks for runs inside that request, and on PostgreSQL every store
 * call of a request gets only what is left of the request's deadline
 * (SPIKE_NEXUS_DB_OPERATION_TIMEOUT: store/postgres/errors.ts `budgetMs`). A move that spends
 * the deadline waiting for slow Keepers must still commit, and release its move lease so the
 * operator's retry is not refused for the lease's time to live. The store here is a shared
 * SQLite file (so the move takes the lease) whose calls apply the PostgreSQL budget rule.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { runWithDeadline } from '../../lib/index.js';
import { SqliteStore } from '../../store/sqlite/store.js';
import { budgetMs } from '../../store/postgres/errors.js';
import { FakeKeepers, logger, urls } from '../../../test/helpers/fake-keepers.js';
import { SharingMover, type MoveStep } from './move.js';
import { MOVE_LEASE_RECORD } from './move-lease.js';
import { adoptKey, loadSharing } from './sharing.js';
import { KeyState } from './state.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Every store and lease call first takes PostgreSQL's request budget (throws once the deadline passed). */
function withPgBudget(store: SqliteStore): void {
  const custody = store.custody();
  for (const [obj, names] of [[store, ['getSystem', 'putSystem']], [custody, ['takeLease', 'releaseLease']]] as const) {
    for (const name of names) {
      const target = obj as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
      const real = target[name]!.bind(obj);
      target[name] = async (...a: unknown[]) => {
        budgetMs();
        return real(...a);
      };
    }
  }
}

async function started(onStep: (s: MoveStep) => Promise<void>): Promise<{ store: SqliteStore; mover: SharingMover; root: RootKey; peers: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-move-deadline-'));
  dirs.push(dir);
  const store = new SqliteStore({ file: path.join(dir, 'spike.db'), shared: true });
  const peers = urls(3);
  const root = RootKey.generate();
  const split = splitSecret(root, 2, 3);
  const keys = new KeyState();
  await adoptKey(store, keys, RootKey.fromBytes(root.bytes()), split.shares.slice(0, 2), { epoch: 1, threshold: 2, shares: 3, commitments: split.commitments, peers });
  const k = new FakeKeepers();
  peers.forEach((u, i) => k.slot(u).contribute('nexus', { value: split.shares[i]!.value, id: i + 1, epoch: 1, commitments: split.commitments }));
  split.shares.forEach(wipeShare);
  withPgBudget(store);
  const mover = new SharingMover({ store, keys, client: k.client(), logger, attempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, shared: true, onStep });
  return { store, mover, root, peers };
}

/** Waits (bounded) until another owner can take the move lease: the move released it. */
async function leaseFreed(store: SqliteStore): Promise<boolean> {
  const other = new Uint8Array(16).fill(7);
  const until = performance.now() + 3_000; // far below the lease's 15 s time to live
  for (;;) {
    if (await store.custody().takeLease(MOVE_LEASE_RECORD, other, 1_000)) return true;
    if (performance.now() > until) return false;
    await sleep(20);
  }
}

test('a requested move whose Keepers outlast the request deadline still commits and releases its move lease (PostgreSQL request budget)', async () => {
  const { store, mover, root, peers } = await started(async (step) => {
    if (step === 'after-pending-push') await sleep(150); // slow Keepers: the request's deadline passes here
  });
  try {
    const next = await runWithDeadline(50, () => mover.move('refresh', { threshold: 2, shares: 3, peers }));
    assert.equal(next.epoch, 2);
    assert.equal((await loadSharing(store))?.epoch, 2, 'committed in the store');
    assert.ok(await leaseFreed(store), 'the move lease was released');
  } finally {
    await store.close();
    root.destroy();
  }
});

test('a root-key rotation\'s stage past the request deadline keeps its lease and releases it when done', async () => {
  const { store, mover, root } = await started(async (step) => {
    if (step === 'after-pending-push') await sleep(150);
  });
  const fresh = RootKey.generate();
  try {
    const rot = mover.forRotation();
    await runWithDeadline(50, async () => {
      const staged = await rot.stage(fresh);
      staged.basis.forEach(wipeShare);
      rot.done?.();
    });
    assert.ok(await leaseFreed(store), 'the move lease was released');
  } finally {
    fresh.destroy();
    await store.close();
    root.destroy();
  }
});
