/**
 * sqlite backend read path (one statement for metadata + value): every case where the value row
 * the statement brought is not the one to return — an explicit older version, a current
 * version below the highest stored one, deleted and destroyed versions, a missing value row,
 * version rows without metadata — answers exactly as the two-statement read did; and the
 * metadata compared with the blob the sealer remembers (returned as 0 when equal) is
 * never taken for the stored one when they differ, on reads and on writes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { RecordSealer } from '../codec.js';
import { Keyring } from '../keyring.js';
import { SqliteStore } from './store.js';
import { StoreError } from '../types.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function open(): Promise<{ store: SqliteStore; file: string; root: RootKey }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sqlite-read-'));
  dirs.push(dir);
  const file = path.join(dir, 'spike.db');
  const store = new SqliteStore({ file });
  const root = RootKey.generate();
  await store.unlock(root);
  return { store, file, root };
}

const isIntegrity = (e: unknown): boolean => e instanceof StoreError && e.code === 'store_integrity';

test('reads: explicit versions, current after deleting the highest, deleted, destroyed, unknown', async () => {
  const { store, root } = await open();
  try {
    for (let i = 1; i <= 3; i++) await store.putSecret('app/db', { v: String(i) });
    assert.deepEqual({ ...(await store.getSecret('app/db'))!.values }, { v: '3' });
    assert.equal((await store.getSecret('app/db'))!.version, 3);
    assert.deepEqual({ ...(await store.getSecret('app/db', 1))!.values }, { v: '1' });
    assert.deepEqual({ ...(await store.getSecret('app/db', 2))!.values }, { v: '2' });
    assert.equal(await store.getSecret('app/db', 4), null);
    assert.equal(await store.getSecret('app/db', -1), null);
    assert.equal(await store.getSecret('app/db', 1.5), null);
    assert.equal(await store.getSecret('nope'), null);
    // Highest version soft-deleted: the current one is read through the fallback statement.
    assert.equal(await store.deleteSecret('app/db', [3]), true);
    assert.equal(await store.getSecret('app/db', 3), null);
    const cur = await store.getSecretMetadata('app/db');
    const r = await store.getSecret('app/db');
    if (cur!.metadata.currentVersion === 0) assert.equal(r, null);
    else assert.deepEqual({ ...r!.values }, { v: String(cur!.metadata.currentVersion) });
    assert.equal(await store.undeleteSecret('app/db', [3]), true);
    assert.deepEqual({ ...(await store.getSecret('app/db'))!.values }, { v: '3' });
    // Destroyed version: gone for good.
    assert.equal(await store.destroySecret('app/db', [2]), true);
    assert.equal(await store.getSecret('app/db', 2), null);
    assert.deepEqual({ ...(await store.getSecret('app/db', 1))!.values }, { v: '1' });
  } finally {
    await store.close();
    root.destroy();
  }
});

test('STO-05: a value row removed behind the store, or version rows without metadata, is an integrity error', async () => {
  const { store, file, root } = await open();
  await store.putSecret('a/b', { k: '1' });
  await store.putSecret('a/b', { k: '2' });
  const sealer = new RecordSealer(Keyring.derive(root));
  const id = sealer.secretId('a/b');
  sealer.destroy();
  await store.close();
  const db = new Database(file);
  db.prepare('DELETE FROM secret_versions WHERE id = ? AND version = 2').run(id);
  db.close();
  const again = new SqliteStore({ file });
  try {
    await again.unlock(root);
    await assert.rejects(again.getSecret('a/b'), isIntegrity); // current = 2, its row is gone
    assert.deepEqual({ ...(await again.getSecret('a/b', 1))!.values }, { k: '1' });
    await again.close();
    const db2 = new Database(file);
    db2.prepare('DELETE FROM secrets WHERE id = ?').run(id);
    db2.close();
    const third = new SqliteStore({ file });
    try {
      await third.unlock(root);
      await assert.rejects(third.getSecret('a/b'), isIntegrity);
    } finally {
      await third.close();
    }
  } finally {
    await again.close();
    root.destroy();
  }
});

test('D8: a value row moved under another version number does not open', async () => {
  const { store, file, root } = await open();
  await store.putSecret('x/y', { k: 'old' });
  await store.putSecret('x/y', { k: 'new' });
  const sealer = new RecordSealer(Keyring.derive(root));
  const id = sealer.secretId('x/y');
  sealer.destroy();
  await store.close();
  const db = new Database(file);
  const v1 = db.prepare('SELECT value FROM secret_versions WHERE id = ? AND version = 1').pluck().get(id) as Buffer;
  db.prepare('UPDATE secret_versions SET value = ? WHERE id = ? AND version = 2').run(v1, id);
  db.close();
  const again = new SqliteStore({ file });
  try {
    await again.unlock(root);
    await assert.rejects(again.getSecret('x/y'), isIntegrity);
  } finally {
    await again.close();
    root.destroy();
  }
});

/**
 * Writes version 1 and then version 2 of `p` (the sealer then remembers version 2's metadata),
 * runs `between`, and puts version 1's metadata blob back behind the store: an older, validly
 * sealed blob (a rollback, which the anchor catches elsewhere) that differs from the remembered one.
 */
async function putBackFirstMeta(store: SqliteStore, file: string, p: string, between: () => Promise<void> = async () => undefined): Promise<void> {
  await store.putSecret(p, { v: '1' });
  const db = new Database(file);
  try {
    const meta1 = db.prepare('SELECT meta FROM secrets').pluck().get() as Buffer;
    await store.putSecret(p, { v: '2' });
    await between();
    db.prepare('UPDATE secrets SET meta = ?').run(meta1);
  } finally {
    db.close();
  }
}

test('the read asks SQLite whether the metadata is still the remembered blob: a blob put back behind the store is the one read', async () => {
  const { store, file, root } = await open();
  try {
    await putBackFirstMeta(store, file, 'app/meta', async () => {
      assert.equal((await store.getSecret('app/meta'))!.version, 2);
      assert.equal((await store.getSecret('app/meta'))!.version, 2); // answered "unchanged"
    });
    const got = await store.getSecret('app/meta');
    assert.equal(got!.version, 1);
    assert.deepEqual({ ...got!.values }, { v: '1' });
  } finally {
    await store.close();
    root.destroy();
  }
});

test('a write plans from the stored metadata, not the remembered blob, when they differ', async () => {
  const { store, file, root } = await open();
  try {
    await putBackFirstMeta(store, file, 'app/plan');
    // Planned from the stored metadata (last version 1), the next version is 2 again.
    assert.deepEqual(await store.putSecret('app/plan', { v: '3' }), { version: 2 });
    assert.equal((await store.getSecretMetadata('app/plan'))!.metadata.currentVersion, 2);
  } finally {
    await store.close();
    root.destroy();
  }
});

test('metadata that is not a blob (put there behind a rebuilt table) is an integrity error, never "unchanged"', async () => {
  for (const bad of ['NULL', '0']) {
    const { store, file, root } = await open();
    try {
      await store.putSecret('app/tamper', { v: '1' });
      assert.equal((await store.getSecret('app/tamper'))!.version, 1); // metadata remembered
      const db = new Database(file);
      try {
        db.exec(`CREATE TABLE loose (id BLOB PRIMARY KEY, path BLOB, meta) WITHOUT ROWID;
          INSERT INTO loose SELECT id, path, meta FROM secrets; DROP TABLE secrets; ALTER TABLE loose RENAME TO secrets;
          UPDATE secrets SET meta = ${bad};`);
      } finally {
        db.close();
      }
      await assert.rejects(store.getSecret('app/tamper'), isIntegrity, `meta ${bad}: GET`);
      await assert.rejects(store.getSecretMetadata('app/tamper'), isIntegrity, `meta ${bad}: metadata`);
      await assert.rejects(store.putSecret('app/tamper', { v: '2' }), isIntegrity, `meta ${bad}: PUT`);
    } finally {
      await store.close();
      root.destroy();
    }
  }
});
