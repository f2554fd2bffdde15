/**
 * `rotate-root-key` runs inside the operator's request, and on PostgreSQL every store call of a
 * request gets only what is left of the request's deadline (SPIKE_NEXUS_DB_OPERATION_TIMEOUT:
 * store/postgres/errors.ts `budgetMs`). A stage that spends it waiting for Keepers must not
 * make the store switch fail, and the background re-encryption the rotation starts must not
 * inherit the deadline (every step after it would fail, the older storage keys would never be
 * erased). The store is a real SQLite file whose custody calls apply the PostgreSQL budget rule.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { createLogger, runWithDeadline } from '../../lib/index.js';
import { custodyOf, Reencryptor, SqliteStore } from '../../store/index.js';
import { budgetMs } from '../../store/postgres/errors.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { KeyState, type SharingInfo } from './state.js';
import { adoptKey } from './sharing.js';
import { RootRotation, type RootSharingMove, type StagedSharing } from './rotation.js';

const logger = createLogger({ component: 't', level: 'silent' });

function sharingOf(root: RootKey, epoch: number): StagedSharing {
  const split = splitSecret(root, 2, 3);
  split.shares.slice(2).forEach(wipeShare);
  const sharing: SharingInfo = { epoch, threshold: 2, shares: 3, commitments: split.commitments };
  return { sharing, basis: split.shares.slice(0, 2) };
}

/** A stage whose Keepers take `ms` to acknowledge. */
function slowMove(ms: number): RootSharingMove {
  return {
    stage: async (root: RootKey) => {
      await sleep(ms);
      return sharingOf(root, 2);
    },
    promote: async () => undefined,
  };
}

async function started(): Promise<{ store: SqliteStore; keys: KeyState }> {
  const store = new SqliteStore({ file: path.join(tempDir('spike-rotation-deadline-'), 'spike.db') });
  const keys = new KeyState();
  const root = RootKey.generate();
  const first = sharingOf(root, 1);
  await adoptKey(store, keys, root, first.basis, first.sharing);
  for (let i = 0; i < 5; i++) await store.putSecret(`r/s${i}`, { k: String(i) });
  // PostgreSQL's rule on the calls a rotation and its re-encryption make.
  const custody = store.custody() as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const name of ['switchRoot', 'reencryptStep', 'eraseOlder']) {
    const real = custody[name]!.bind(custody);
    custody[name] = async (...a: unknown[]) => {
      budgetMs();
      return real(...a);
    };
  }
  return { store, keys };
}

/** Waits (bounded, far below the job's 5 s retry pause) until the keyring holds one storage generation. */
async function reencrypted(store: SqliteStore): Promise<boolean> {
  const until = performance.now() + 3_000;
  while (custodyOf(store)!.keyring.storage.ids().length > 1) {
    if (performance.now() > until) return false;
    await sleep(20);
  }
  return true;
}

test('a rotation whose stage outlasts the request deadline still switches the store, and its re-encryption finishes', async () => {
  const { store, keys } = await started();
  const reencrypt = new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 });
  try {
    const rotation = new RootRotation({ store, keys, logger, reencrypt, move: slowMove(150) });
    const r = await runWithDeadline(50, () => rotation.rotate());
    assert.equal(r.epoch, 2);
    assert.ok(await reencrypted(store), 'older storage keys erased');
    assert.equal((await store.getSecret('r/s3'))?.values['k'], '3');
  } finally {
    await reencrypt.stop();
    await store.close();
    keys.clear();
  }
});

test('re-encryption kicked inside a request (a rotation seen mid-request) does not inherit its deadline', async () => {
  const { store, keys } = await started();
  const idle = new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 });
  await idle.stop(); // the rotation's own kick does nothing: the kick under test is the one below
  const reencrypt = new Reencryptor(() => custodyOf(store), { ratePerSecond: 10 }); // the 5 blobs, a 0.5 s pause, then the last scan
  try {
    await new RootRotation({ store, keys, logger, reencrypt: idle, move: slowMove(0) }).rotate();
    assert.equal(custodyOf(store)!.keyring.storage.ids().length, 2);
    runWithDeadline(30, () => reencrypt.kick());
    assert.ok(await reencrypted(store), 'older storage keys erased although the request deadline passed mid-job');
  } finally {
    await reencrypt.stop();
    await store.close();
    keys.clear();
  }
});
