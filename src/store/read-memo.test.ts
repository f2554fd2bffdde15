/**
 * The sealer's read memos (read-memo.ts): bounded, copies out, a remembered metadata state
 * used only for the exact blob it came from; and, over real SQLite files, a GET or metadata
 * read never answers from a state that another writer has replaced (STO freshness).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../crypto/index.js';
import { BoundedMemo, IdMemo, META_MEMO_MAX_BLOB, MetaMemo } from './read-memo.js';
import type { SecretState } from './model.js';
import { SqliteStore } from './sqlite/store.js';

const plain = (r: { version: number; values: Record<string, string> } | null): unknown => (r === null ? null : { version: r.version, values: { ...r.values } });

test('BoundedMemo: holds at most its size, forgetting the oldest entry first', () => {
  const m = new BoundedMemo<number>(3);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i);
  assert.equal(m.size, 3);
  assert.equal(m.get('a'), undefined);
  assert.deepEqual(['b', 'c', 'd'].map((k) => m.get(k)), [1, 2, 3]);
  m.set('b', 9); // an update does not evict
  assert.equal(m.size, 3);
  assert.equal(m.get('c'), 2);
  m.clear();
  assert.equal(m.size, 0);
});

test('IdMemo: hashes each input once and hands out copies a caller cannot use to alter the memo', () => {
  let calls = 0;
  const ids = new IdMemo((input) => {
    calls++;
    return Buffer.from(input.padEnd(32, '.'));
  });
  const first = ids.id('s:a/b');
  first.fill(0);
  const second = ids.id('s:a/b');
  assert.equal(calls, 1);
  assert.equal(second.toString(), 's:a/b'.padEnd(32, '.'));
  assert.notEqual(first.buffer === second.buffer && first.byteOffset === second.byteOffset, true);
  ids.clear();
  ids.id('s:a/b');
  assert.equal(calls, 2);
});

function state(custom?: Map<string, string>): SecretState {
  const t = new Date(1_700_000_000_000);
  const s: SecretState = {
    meta: { currentVersion: 1, oldestVersion: 1, lastVersion: 1, createdTime: t, updatedTime: t, maxVersions: 10 },
    versions: new Map([[1, { createdTime: t, deletedTime: null }]]),
  };
  if (custom) s.meta.customMetadata = Object.fromEntries(custom);
  return s;
}

test('MetaMemo: a state is used again only for the same id and the same blob bytes', () => {
  const memo = new MetaMemo();
  const id = Buffer.alloc(32, 1);
  const blob = Buffer.from('blob-1');
  let opens = 0;
  const open = (): SecretState => {
    opens++;
    return state();
  };
  const a = memo.open(id, blob, open);
  assert.equal(memo.open(id, Buffer.from('blob-1'), open), a);
  assert.equal(opens, 1);
  assert.notEqual(memo.open(id, Buffer.from('blob-2'), open), a, 'another blob for the same record is opened');
  assert.notEqual(memo.open(Buffer.alloc(32, 2), Buffer.from('blob-1'), open), a, 'the same blob under another id is opened');
  assert.equal(opens, 3);
  assert.throws(() => {
    (a.meta as { currentVersion: number }).currentVersion = 7;
  }, TypeError, 'a shared state is frozen');
  assert.throws(() => a.versions.delete(1), TypeError, 'its versions cannot be removed');
  assert.throws(() => a.versions.set(9, { createdTime: new Date(0), deletedTime: null }), TypeError, 'nor added');
  assert.throws(() => a.versions.clear(), TypeError);
  assert.equal(a.versions.get(1)?.deletedTime, null, 'and still read as before');
  memo.clear();
  memo.open(id, Buffer.from('blob-1'), open);
  assert.equal(opens, 4);
});

test('MetaMemo: a state remembered as sealed into a blob is handed out for that blob without opening it', () => {
  const memo = new MetaMemo();
  const id = Buffer.alloc(32, 4);
  const sealed = state();
  memo.remember(id, Buffer.from('sealed'), sealed);
  assert.ok(Object.isFrozen(sealed) && Object.isFrozen(sealed.meta));
  const never = (): SecretState => assert.fail('opened a blob the memo holds');
  assert.equal(memo.open(id, Buffer.from('sealed'), never), sealed);
  let opens = 0;
  memo.open(id, Buffer.from('rolled-back-or-other'), () => {
    opens++;
    return state();
  });
  assert.equal(opens, 1);
});

test('MetaMemo: what it keeps has memory of its own, never a block of Node\'s shared pool', () => {
  // A kept copy cut from the pool holds its whole 8 KiB block alive, shared with short-lived
  // buffers of the request path: RSS grew with every path remembered (FI-19).
  const own = (b: Uint8Array): boolean => b.byteOffset === 0 && b.buffer.byteLength === b.byteLength;
  const metas = new MetaMemo();
  const id = Buffer.alloc(32, 5);
  metas.remember(id, Buffer.from('a small sealed blob'), state());
  assert.ok(own(metas.blob(id)!), 'the remembered blob');
  metas.open(Buffer.alloc(32, 6), Buffer.from('an opened blob'), state);
  assert.ok(own(metas.blob(Buffer.alloc(32, 6))!), 'an opened blob');
});

test('MetaMemo: states with custom metadata and oversized blobs are never remembered', () => {
  const memo = new MetaMemo();
  const id = Buffer.alloc(32, 3);
  let opens = 0;
  const withCustom = (): SecretState => {
    opens++;
    return state(new Map([['owner', 'team-a']]));
  };
  memo.open(id, Buffer.from('c'), withCustom);
  memo.open(id, Buffer.from('c'), withCustom);
  assert.equal(opens, 2);
  const big = Buffer.alloc(META_MEMO_MAX_BLOB + 1, 7);
  const fresh = (): SecretState => {
    opens++;
    return state();
  };
  memo.open(id, big, fresh);
  memo.open(id, big, fresh);
  assert.equal(opens, 4);
});

test('sqlite: reads through the memo see every write, by this store or another one on the same file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-memo-'));
  const root = RootKey.generate();
  const file = path.join(dir, 'spike.db');
  const a = new SqliteStore({ file });
  const b = new SqliteStore({ file });
  try {
    await a.unlock(root);
    await b.unlock(root);
    await a.putSecret('memo/x', { k: '1' });
    assert.deepEqual(plain(await a.getSecret('memo/x')), { version: 1, values: { k: '1' } });
    assert.deepEqual(plain(await a.getSecret('memo/x')), { version: 1, values: { k: '1' } });
    await b.putSecret('memo/x', { k: '2' });
    assert.deepEqual(plain(await a.getSecret('memo/x')), { version: 2, values: { k: '2' } });
    await b.deleteSecret('memo/x', [2]);
    assert.deepEqual(plain(await a.getSecret('memo/x')), { version: 1, values: { k: '1' } }, 'deleted by the other store: the next read falls back');
    assert.equal(await a.getSecret('memo/x', 2), null, 'deleted by the other store: not readable at the next read');
    assert.equal((await a.getSecretMetadata('memo/x'))?.metadata.currentVersion, 1);
    await a.undeleteSecret('memo/x', [2]);
    assert.deepEqual(plain(await b.getSecret('memo/x')), { version: 2, values: { k: '2' } });
    await a.putSecret('memo/x', { k: '3' }, { customMetadata: { owner: 'team-a' } });
    const meta = await b.getSecretMetadata('memo/x');
    assert.equal(meta?.metadata.currentVersion, 3);
    assert.deepEqual({ ...meta?.metadata.customMetadata }, { owner: 'team-a' });
  } finally {
    await a.close();
    await b.close();
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
