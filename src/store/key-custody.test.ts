/**
 * Key custody on a real sqlite file: the atomic root-key switch (the store opens with the
 * new root only, the old records stay readable), background re-encryption under concurrent
 * writes (CAS versions exact), resumption after a stop midway, erasure of the old generation
 * (no envelope under the old key id left in the file), and persisted AES-GCM use counters
 * with the automatic data-key rotation at a (lowered) limit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { envelopeKeyId, RootKey } from '../crypto/index.js';
import { Keyring, KEYRING_RECORD } from './keyring.js';
import { custodyOf } from './open.js';
import { Reencryptor } from './reencrypt.js';
import { SqliteStore } from './sqlite/store.js';
import { StoreError } from './types.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-custody-'));
  dirs.push(dir);
  return path.join(dir, 'spike.db');
}

/** Key ids of every sealed blob in the file (secrets, versions, policies). */
function keyIdsInFile(file: string): Map<number, number> {
  const db = new Database(file, { readonly: true });
  const blobs = [
    ...db.prepare('SELECT path FROM secrets UNION ALL SELECT meta FROM secrets').pluck().all(),
    ...db.prepare('SELECT value FROM secret_versions').pluck().all(),
    ...db.prepare('SELECT body FROM policies').pluck().all(),
  ] as Buffer[];
  db.close();
  const out = new Map<number, number>();
  for (const b of blobs) {
    const id = envelopeKeyId(b) ?? -1;
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

const isCode = (code: string) => (e: unknown): boolean => e instanceof StoreError && e.code === code;

test('ROT-01: rotate the root key, re-encrypt under concurrent writes, resume after a stop, old key erased', async () => {
  const file = tempFile();
  const oldRoot = RootKey.generate();
  const newRoot = RootKey.generate();
  let store = new SqliteStore({ file });
  await store.unlock(oldRoot);
  for (let i = 0; i < 120; i++) await store.putSecret(`app/s${i}`, { k: `v${i}` });
  await store.putSecret('app/s0', { k: 'v0b' }, { cas: 1 });
  await store.putPolicy({ name: 'p1', spiffeIdPattern: '^x$', pathPattern: '^app/.*$', permissions: ['read'] });
  assert.deepEqual([...keyIdsInFile(file).keys()], [1]);

  const custody = custodyOf(store)!;
  const ids = await custody.switchRoot(newRoot);
  assert.deepEqual(ids, { storage: 2, cipher: 2 });
  // Old records still readable, new writes under key id 2.
  assert.equal((await store.getSecret('app/s7'))?.values['k'], 'v7');
  await store.putSecret('app/new', { k: 'n' });

  // Re-encrypt a little, then stop (a crash midway leaves both key ids in the file).
  const job = new Reencryptor(() => custodyOf(store), { ratePerSecond: 20 });
  job.kick();
  for (const deadline = Date.now() + 30_000; job.progress().rewritten < 20 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await job.stop();
  await store.close();
  const mid = keyIdsInFile(file);
  assert.ok((mid.get(1) ?? 0) > 0 && (mid.get(2) ?? 0) > 0, 'a stop midway leaves both generations in use');

  // The old root no longer opens the store; the new one does.
  store = new SqliteStore({ file });
  await assert.rejects(store.unlock(oldRoot), isCode('store_wrong_key'));
  await store.close();
  store = new SqliteStore({ file });
  await store.unlock(newRoot);
  assert.equal((await store.getSecret('app/s0'))?.values['k'], 'v0b');

  // Resume, with writes (CAS) running at the same time.
  const job2 = new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 });
  job2.kick();
  const writes = Array.from({ length: 30 }, (_, i) => store.putSecret(`app/s${i + 1}`, { k: `w${i + 1}` }, { cas: 1 }));
  await Promise.all(writes);
  await job2.idle();
  assert.deepEqual([...keyIdsInFile(file).keys()], [2], 'no envelope under the old key id is left');
  assert.deepEqual(custodyOf(store)!.keyring.storage.ids(), [2], 'the old generation is erased');
  for (let i = 1; i <= 30; i++) {
    const md = await store.getSecretMetadata(`app/s${i}`);
    assert.equal(md?.metadata.lastVersion, 2, 'CAS versions exact');
    assert.equal((await store.getSecret(`app/s${i}`))?.values['k'], `w${i}`);
  }
  for (let i = 31; i < 120; i++) assert.equal((await store.getSecret(`app/s${i}`))?.values['k'], `v${i}`);
  assert.equal((await store.getPolicy('p1'))?.pathPattern, '^app/.*$');
  assert.equal((await store.listSecretPaths()).length, 121);
  await store.close();

  // The stored keyring holds one storage generation too.
  const db = new Database(file, { readonly: true });
  const rec = db.prepare('SELECT value FROM system WHERE key = ?').pluck().get(KEYRING_RECORD) as Buffer;
  db.close();
  const k = Keyring.open(newRoot, rec);
  assert.deepEqual(k.storage.ids(), [2]);
  assert.deepEqual(k.cipher.ids(), [1, 2], 'cipher versions are kept (their ciphertexts live outside the store)');
  k.destroy();
  oldRoot.destroy();
  newRoot.destroy();
});

test('CRY-GCM-LIMIT: seal counters persist across restarts; the storage key rotates before the limit', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  const limit = 80; // blocks of 10 seals
  let store = new SqliteStore({ file, sealLimit: limit });
  await store.unlock(root);
  for (let i = 0; i < 10; i++) await store.putSecret(`c/s${i}`, { k: String(i) }); // 2 seals each (path+meta+value = 3 on create)
  const reservedBefore = custodyOf(store)!.keyring.storage.reserved(1);
  await store.close();
  store = new SqliteStore({ file, sealLimit: limit });
  await store.unlock(root);
  const k = custodyOf(store)!.keyring;
  assert.ok(k.storage.current >= 1);
  assert.ok(k.storage.reserved(1) >= reservedBefore, 'a restart never lowers the count');
  for (let i = 0; i < 20; i++) await store.putSecret(`c/t${i}`, { k: String(i) });
  const ring = custodyOf(store)!.keyring.storage;
  assert.ok(ring.current >= 2, 'the storage key rotated by itself');
  for (const id of ring.ids()) assert.ok(ring.reserved(id) <= limit, `key ${id} never passes the limit`);
  for (let i = 0; i < 10; i++) assert.equal((await store.getSecret(`c/s${i}`))?.values['k'], String(i));
  for (let i = 0; i < 20; i++) assert.equal((await store.getSecret(`c/t${i}`))?.values['k'], String(i));
  await store.close();
  root.destroy();
});

test('ROT-02: a switch with a root that no longer matches kcv is refused and writes nothing', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  const store = new SqliteStore({ file });
  await store.unlock(root);
  await store.putSecret('a/b', { k: '1' });
  const custody = custodyOf(store)!;
  const first = RootKey.generate();
  await custody.switchRoot(first);
  // A second store handle still holding the old root (another instance) cannot switch.
  const other = new SqliteStore({ file });
  await assert.rejects(other.unlock(root), isCode('store_wrong_key'));
  await other.close();
  assert.equal((await store.getSecret('a/b'))?.values['k'], '1');
  await store.close();
  for (const r of [root, first]) r.destroy();
});

test('ROT-01: after the old generation is erased, an old metadata row put back is refused, never answered from memory', async () => {
  const file = tempFile();
  const oldRoot = RootKey.generate();
  const newRoot = RootKey.generate();
  const store = new SqliteStore({ file });
  try {
    await store.unlock(oldRoot);
    await store.putSecret('keep/x', { k: 'v' });
    assert.equal((await store.getSecretMetadata('keep/x'))?.metadata.currentVersion, 1); // opened, remembered
    const readMeta = (): Buffer => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT meta FROM secrets').pluck().get() as Buffer;
      } finally {
        db.close();
      }
    };
    const oldMeta = readMeta();
    await custodyOf(store)!.switchRoot(newRoot);
    const job = new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 });
    job.kick();
    await job.idle();
    assert.deepEqual(custodyOf(store)!.keyring.storage.ids(), [2], 'the old generation is erased');
    assert.notDeepEqual(readMeta(), oldMeta);
    const db = new Database(file);
    db.prepare('UPDATE secrets SET meta = ?').run(oldMeta); // an old row restored behind Nexus's back
    db.close();
    await assert.rejects(store.getSecretMetadata('keep/x'), isCode('store_integrity'));
  } finally {
    await store.close();
    oldRoot.destroy();
    newRoot.destroy();
  }
});
