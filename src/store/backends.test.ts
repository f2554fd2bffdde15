/**
 * Runs the shared conformance suite against every backend that can run here:
 * memory, and sqlite on real files in a temp folder (postgres: postgres/store.test.ts, real server).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStoreConformance } from '../../test/helpers/store-conformance.js';
import { MemoryStore } from './memory.js';
import { LiteStore } from './lite.js';
import { SqliteStore } from './sqlite/store.js';
import { openStore } from './open.js';
import { StoreError, UnsupportedInLiteModeError, type Store } from './types.js';
import { RootKey } from '../crypto/index.js';

runStoreConformance({
  name: 'memory',
  persistent: false,
  needsUnlock: false,
  async open({ now, defaultMaxVersions }) {
    const store = new MemoryStore({ now, ...(defaultMaxVersions ? { defaultMaxVersions } : {}) });
    return { store, cleanup: () => store.close() };
  },
});

runStoreConformance({
  name: 'sqlite',
  persistent: true,
  needsUnlock: true,
  async open({ root, now, defaultMaxVersions }) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-store-'));
    const file = path.join(dir, 'spike.db');
    const mk = (): SqliteStore => new SqliteStore({ file, now, ...(defaultMaxVersions ? { defaultMaxVersions } : {}) });
    let current: Store = mk();
    return {
      store: current,
      reopen: async () => {
        await current.close();
        current = mk();
        await current.unlock(root);
        return current;
      },
      cleanup: async () => {
        await current.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

test('lite: secret/policy writes and reads throw UnsupportedInLiteModeError; system records kept in memory', async () => {
  const s = await openStore({ kind: 'lite' });
  assert.equal(s.kind, 'lite');
  const root = RootKey.generate();
  assert.equal(s.isUnlocked(), false);
  await s.unlock(root);
  assert.equal(s.isUnlocked(), true);
  for (const call of [
    () => s.putSecret('a/b', { k: 'v' }),
    () => s.getSecret('a/b'),
    () => s.deleteSecret('a/b', []),
    () => s.undeleteSecret('a/b', []),
    () => s.destroySecret('a/b', []),
    () => s.getSecretMetadata('a/b'),
    () => s.listSecretPaths(),
    () => s.putPolicy({ name: 'p', spiffeIdPattern: 'x', pathPattern: 'y', permissions: [] }),
    () => s.getPolicy('p'),
    () => s.deletePolicy('p'),
  ]) {
    await assert.rejects(call(), (e: unknown) => e instanceof UnsupportedInLiteModeError && e.code === 'store_unsupported');
  }
  assert.deepEqual(await s.listPolicies(), []);
  assert.equal(await s.policyGeneration(), 0);
  assert.equal(await s.putSystemIfAbsent('commitments', new Uint8Array([1])), true);
  assert.equal(await s.putSystemIfAbsent('commitments', new Uint8Array([2])), false);
  assert.deepEqual(await s.getSystem('commitments'), new Uint8Array([1]));
  await s.close();
  root.destroy();
});

test('openStore: dispatches on kind; sqlite needs a file; postgres needs a connection string', async () => {
  const m = await openStore({ kind: 'memory' });
  assert.equal(m.kind, 'memory');
  assert.equal(m.isUnlocked(), true);
  await m.close();
  await assert.rejects(openStore({ kind: 'sqlite' }), (e: unknown) => e instanceof StoreError && e.code === 'store_invalid_argument');
  await assert.rejects(openStore({ kind: 'postgres' }), (e: unknown) => e instanceof StoreError && e.code === 'store_invalid_argument');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-store-'));
  try {
    const s = await openStore({ kind: 'sqlite', file: path.join(dir, 'spike.db') });
    assert.equal(s.kind, 'sqlite');
    assert.equal(s.isUnlocked(), false);
    await s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
