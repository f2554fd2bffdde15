/**
 * The one key-check record (`kcv`) and key adoption in one transaction, on real sqlite
 * files and on the in-process stores:
 * - a database written by the code before this change (kcv + store/key-check + sharing,
 *   test/helpers/legacy-store.ts) still unlocks with its root key, and a wrong key is still
 *   refused with `store_wrong_key`;
 * - a database that only holds the old `store/key-check` record (unlocked directly, never
 *   through Nexus) is checked against it, then gets its `kcv` record;
 * - a fresh database gets exactly one key-check record;
 * - `adoptKey`: first start writes both records; later starts verify them; a refusal writes
 *   nothing and leaves the store locked.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../crypto/index.js';
import { KEY_CHECK_RECORD, LEGACY_STORE_CHECK_RECORD } from './key-check.js';
import { KEYRING_RECORD } from './keyring.js';
import { SEAL_FENCE_RECORD } from './seal-fence.js';
import { LiteStore } from './lite.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite/index.js';
import { StoreError, type KeyAdoption, type Store } from './types.js';
import { LEGACY_CONTENT, legacyRoot, writeLegacySqliteFile } from '../../test/helpers/legacy-store.js';
import { tempDir } from '../../test/helpers/temp.js';

const tempFile = (): string => path.join(tempDir('spike-key-check-'), 'spike.db');

/** A sqlite file with the current schema holding the legacy rows (minus `omit` system records). */
async function legacyFile(omit: readonly string[] = []): Promise<string> {
  const file = tempFile();
  await writeLegacySqliteFile(file, omit);
  return file;
}

const isCode = (code: string) => (e: unknown): boolean => e instanceof StoreError && e.code === code;

function systemKeys(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT key FROM system ORDER BY key').pluck().all() as string[]);
  } finally {
    db.close();
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** An adoption whose stored record must equal `record` byte for byte. */
function adoption(record: string): KeyAdoption<'record_mismatch'> {
  return {
    recordKey: 'sharing',
    record: bytes(record),
    judge: (stored) => (Buffer.from(stored).equals(Buffer.from(bytes(record))) ? null : 'record_mismatch'),
  };
}

test('a database written before the single key check still unlocks with its root key; a wrong key → store_wrong_key', async () => {
  const file = await legacyFile();
  const wrong = new SqliteStore({ file });
  await assert.rejects(wrong.unlock(RootKey.generate()), isCode('store_wrong_key'));
  assert.equal(wrong.isUnlocked(), false);
  await wrong.close();

  const root = legacyRoot();
  const store = new SqliteStore({ file });
  try {
    await store.unlock(root);
    const got = await store.getSecret(LEGACY_CONTENT.path);
    assert.equal(got?.version, LEGACY_CONTENT.current.version);
    assert.deepEqual({ ...got?.values }, LEGACY_CONTENT.current.values);
    assert.equal(await store.getSecret(LEGACY_CONTENT.path, 1), null, 'version 1 was deleted');
    assert.deepEqual({ ...(await store.getSecretMetadata(LEGACY_CONTENT.path))?.metadata.customMetadata }, LEGACY_CONTENT.customMetadata);
    assert.deepEqual(await store.listSecretPaths(), [LEGACY_CONTENT.path]);
    const pol = await store.getPolicy(LEGACY_CONTENT.policy.name);
    assert.deepEqual(pol && { name: pol.name, spiffeIdPattern: pol.spiffeIdPattern, pathPattern: pol.pathPattern, permissions: pol.permissions },
      LEGACY_CONTENT.policy);
    assert.equal(await store.policyGeneration(), LEGACY_CONTENT.policyGeneration);
  } finally {
    await store.close();
    root.destroy();
  }
  assert.deepEqual(systemKeys(file), [KEY_CHECK_RECORD, KEYRING_RECORD, 'sharing', LEGACY_STORE_CHECK_RECORD, SEAL_FENCE_RECORD].sort(), 'nothing removed; the keyring (use counters) added');
});

test('a database holding only the old store check: a wrong key → store_wrong_key and nothing written; its key unlocks and writes kcv', async () => {
  const file = await legacyFile([KEY_CHECK_RECORD, 'sharing']);
  const wrong = new SqliteStore({ file });
  await assert.rejects(wrong.unlock(RootKey.generate()), isCode('store_wrong_key'));
  await assert.rejects(wrong.adoptKey(RootKey.generate(), adoption('x')), isCode('store_wrong_key'));
  await wrong.close();
  assert.deepEqual(systemKeys(file), [LEGACY_STORE_CHECK_RECORD]);

  const root = legacyRoot();
  const store = new SqliteStore({ file });
  try {
    await store.unlock(root);
    assert.deepEqual({ ...(await store.getSecret(LEGACY_CONTENT.path))?.values }, LEGACY_CONTENT.current.values);
  } finally {
    await store.close();
  }
  assert.deepEqual(systemKeys(file), [KEY_CHECK_RECORD, KEYRING_RECORD, LEGACY_STORE_CHECK_RECORD, SEAL_FENCE_RECORD].sort());
  const again = new SqliteStore({ file });
  try {
    await assert.rejects(again.unlock(RootKey.generate()), isCode('store_wrong_key'));
    await again.unlock(root);
  } finally {
    await again.close();
    root.destroy();
  }
});

test('a fresh database gets exactly one key-check record; another key is refused', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  const store = new SqliteStore({ file });
  await store.unlock(root);
  await store.close();
  assert.deepEqual(systemKeys(file), [KEY_CHECK_RECORD, KEYRING_RECORD, SEAL_FENCE_RECORD].sort());
  const other = new SqliteStore({ file });
  try {
    await assert.rejects(other.unlock(RootKey.generate()), isCode('store_wrong_key'));
    await other.unlock(root);
  } finally {
    await other.close();
    root.destroy();
  }
});

test('sqlite adoptKey: first start writes both records at once; later starts verify; refusals write nothing and stay locked', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  const stores = [new SqliteStore({ file }), new SqliteStore({ file })];
  try {
    // Two stores on one file race the first adoption: both succeed, one set of records.
    const results = await Promise.all(stores.map((s) => s.adoptKey(root, adoption('first'))));
    for (const r of results) assert.deepEqual(r, { ok: true, record: bytes('first') });
    assert.ok(stores.every((s) => s.isUnlocked()));
    assert.deepEqual(systemKeys(file), [KEY_CHECK_RECORD, KEYRING_RECORD, 'sharing', SEAL_FENCE_RECORD].sort());
    await assert.rejects(stores[0]!.adoptKey(root, adoption('first')), isCode('store_already_unlocked'));
  } finally {
    for (const s of stores) await s.close();
  }
  const later = new SqliteStore({ file });
  try {
    assert.deepEqual(await later.adoptKey(RootKey.generate(), adoption('first')), { ok: false, refusal: 'key_check_failed' });
    assert.deepEqual(await later.adoptKey(root, adoption('other')), { ok: false, refusal: 'record_mismatch' });
    assert.equal(later.isUnlocked(), false);
    assert.deepEqual(await later.adoptKey(root, adoption('first')), { ok: true, record: bytes('first') });
    assert.equal(later.isUnlocked(), true);
  } finally {
    await later.close();
    root.destroy();
  }
  assert.deepEqual(systemKeys(file), [KEY_CHECK_RECORD, KEYRING_RECORD, 'sharing', SEAL_FENCE_RECORD].sort());
});

test('sqlite adoptKey: a refused record after the key check writes no key-check record either', async () => {
  const file = tempFile();
  const store = new SqliteStore({ file });
  const root = RootKey.generate();
  try {
    await store.putSystem('sharing', bytes('someone else'));
    assert.deepEqual(await store.adoptKey(root, adoption('mine')), { ok: false, refusal: 'record_mismatch' });
    assert.equal(await store.getSystem(KEY_CHECK_RECORD), null);
    assert.equal(store.isUnlocked(), false);
  } finally {
    await store.close();
    root.destroy();
  }
});

for (const make of [() => new MemoryStore(), () => new LiteStore()] as (() => Store)[]) {
  test(`${make().kind} adoptKey: checks the key-check record kept in process; unlock alone checks nothing`, async () => {
    const store = make();
    const root = RootKey.generate();
    try {
      assert.deepEqual(await store.adoptKey(root, adoption('first')), { ok: true, record: bytes('first') });
      assert.equal(store.isUnlocked(), true);
      assert.ok(await store.getSystem(KEY_CHECK_RECORD));
      assert.deepEqual(await store.adoptKey(RootKey.generate(), adoption('first')), { ok: false, refusal: 'key_check_failed' });
      assert.deepEqual(await store.adoptKey(root, adoption('second')), { ok: false, refusal: 'record_mismatch' });
      assert.deepEqual(await store.adoptKey(root, adoption('first')), { ok: true, record: bytes('first') });
      await store.close();
      await assert.rejects(store.adoptKey(root, adoption('first')), isCode('store_closed'));
    } finally {
      root.destroy();
    }
  });
}
