/**
 * One SQLite file written by several processes (several Nexus workers: `shared`): writes wait
 * for SQLite's write lock without blocking the event loop, give up with `store_busy` after the
 * busy timeout, and two stores writing the same paths at once keep every version distinct
 * (SEC-13 across connections), and the seal fence keeps a process that still seals under an
 * older storage generation from committing once another process moved the keyring on (a root
 * switch, the seal limit) and re-encrypted that generation away; a process left on the old
 * root locks again and unlocks with the new one (`lock`). The "other process" is a
 * second connection in this process:
 * with the old blocking wait, the lock holder (this thread) could never let go, so the tests
 * below could not pass.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { StoreError } from '../types.js';
import { SqliteStore } from './store.js';
import { Reencryptor } from '../reencrypt.js';
import { sealFenceAfterSealLimit } from '../../../test/helpers/seal-fence.js';
import { KEY_CHECK_RECORD } from '../key-check.js';
import { SEAL_FENCE_RECORD } from '../seal-fence.js';

const dirs: string[] = [];
const roots: RootKey[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  for (const r of roots) r.destroy();
});

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-sqlite-shared-'));
  dirs.push(dir);
  return path.join(dir, 'spike.db');
}

async function open(file: string, root: RootKey, busyTimeoutMs: number): Promise<SqliteStore> {
  const store = new SqliteStore({ file, shared: true, busyTimeoutMs });
  await store.unlock(root);
  return store;
}

test('shared: a write waits for another connection\'s lock without blocking the event loop, then lands', async () => {
  const root = RootKey.generate();
  roots.push(root);
  const file = tempFile();
  const store = await open(file, root, 5000);
  try {
    await store.putSecret('s/a', { k: '1' });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    let released = false;
    const put = store.putSecret('s/a', { k: '2' }).then((r) => ({ r, released }));
    // The event loop runs while the write waits: timers fire and reads are answered.
    await new Promise((r) => setTimeout(r, 100));
    const meanwhile = await store.getSecret('s/a');
    assert.deepEqual({ version: meanwhile?.version, values: { ...meanwhile?.values } }, { version: 1, values: { k: '1' } });
    released = true;
    other.exec('COMMIT');
    other.close();
    const done = await put;
    assert.equal(done.released, true, 'the write completed before the other connection let go');
    assert.deepEqual(done.r, { version: 2 });
  } finally {
    await store.close();
  }
});

test('shared: a lock held past the busy timeout → store_busy, nothing written; the next write succeeds', async () => {
  const root = RootKey.generate();
  roots.push(root);
  const file = tempFile();
  const store = await open(file, root, 300);
  try {
    await store.putSecret('s/b', { k: '1' });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const t0 = Date.now();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await assert.rejects(store.putSecret('s/b', { k: '2' }), (e: unknown) => e instanceof StoreError && e.code === 'store_busy');
    clearInterval(ticker);
    assert.ok(Date.now() - t0 >= 250, 'gave up before the busy timeout');
    assert.ok(ticks >= 5, `the event loop stalled while waiting (${ticks} ticks)`);
    other.exec('ROLLBACK');
    other.close();
    assert.equal((await store.getSecret('s/b'))?.version, 1);
    assert.deepEqual(await store.putSecret('s/b', { k: '2' }), { version: 2 });
  } finally {
    await store.close();
  }
});

test('FI-15: each write waits its own busy timeout: a write queued late in a long hold is not refused with the earlier ones', async () => {
  const root = RootKey.generate();
  roots.push(root);
  const file = tempFile();
  const busyMs = 600;
  const store = await open(file, root, busyMs);
  try {
    await store.putSecret('s/c', { k: '1' });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    const timed = async (p: string): Promise<{ ms: number; err: unknown }> => {
      const t0 = Date.now();
      try {
        await store.putSecret(p, { k: 'x' });
        return { ms: Date.now() - t0, err: undefined };
      } catch (err) {
        return { ms: Date.now() - t0, err };
      }
    };
    const early = timed('s/early');
    await new Promise((r) => setTimeout(r, busyMs * 0.6));
    const late = timed('s/late');
    const [a, b] = await Promise.all([early, late]);
    other.exec('ROLLBACK');
    other.close();
    for (const r of [a, b]) {
      assert.ok(r.err instanceof StoreError && r.err.code === 'store_busy' && r.err.outcome === 'not_applied', `store_busy, not applied: ${String(r.err)}`);
      // Before: the late write joined the early one's retried batch and failed with it, ~240 ms after it was made.
      assert.ok(r.ms >= busyMs - 50, `refused after ${r.ms} ms, before its own busy timeout (${busyMs} ms)`);
    }
    assert.equal((await store.getSecret('s/early')) ?? undefined, undefined, 'nothing written');
    assert.equal((await store.getSecret('s/late')) ?? undefined, undefined, 'nothing written');
  } finally {
    await store.close();
  }
});

test('SEC-13 across connections: two shared stores, 2 × 24 concurrent writers on the same paths → versions 1..48, distinct, same bytes from both', async () => {
  const root = RootKey.generate();
  roots.push(root);
  const file = tempFile();
  const a = await open(file, root, 10_000);
  const b = await open(file, root, 10_000);
  try {
    const paths = ['race/x', 'race/y'];
    const writes = [a, b].flatMap((store, s) => Array.from({ length: 24 }, (_, w) =>
      Promise.all(paths.map((p) => store.putSecret(p, { who: `s${s}w${w}` }, { maxVersions: 100 })))));
    await Promise.all(writes);
    for (const p of paths) {
      const seen = new Set<string>();
      for (let v = 1; v <= 48; v++) {
        const fromA = await a.getSecret(p, v);
        const fromB = await b.getSecret(p, v);
        assert.deepEqual(fromA, fromB, `${p} v${v}`);
        const who = fromA?.values['who'];
        assert.ok(who !== undefined && !seen.has(who), `${p} v${v}: ${who} written twice or missing`);
        seen.add(who);
      }
      assert.equal(await a.getSecret(p, 49), null);
    }
  } finally {
    await a.close();
    await b.close();
  }
});

/** The keyring reload a fenced write waits for runs on an unref'd timer (a server keeps the loop alive). */
function keepAlive(): () => void {
  const t = setInterval(() => undefined, 1000);
  return () => clearInterval(t);
}

/** Two connections on one new file, both unlocked with `r1`; `r2` is the root one of them switches to. */
async function twoOnOldRoot(): Promise<{ done: () => void; file: string; r1: RootKey; r2: RootKey; a: SqliteStore; b: SqliteStore }> {
  const done = keepAlive();
  const file = tempFile();
  const r1 = RootKey.generate();
  const r2 = RootKey.generate();
  roots.push(r1, r2);
  return { done, file, r1, r2, a: await open(file, r1, 5000), b: await open(file, r1, 5000) };
}

test('seal fence, root switch: a process still on the old root cannot commit under the generation the other one re-encrypted away (refused, nothing written)', async () => {
  const { done, file, r1, r2, a, b } = await twoOnOldRoot();
  let c: SqliteStore | undefined;
  try {
    await a.putSecret('x/old', { k: 'v0' });
    assert.equal(await b.custody().rootMovedOn(), false, 'nothing moved yet');
    const raw = new Database(file);
    const system = (key: string): Buffer => raw.prepare('SELECT value FROM system WHERE key = ?').pluck().get(key) as Buffer;
    const before = { kcv: system(KEY_CHECK_RECORD), fence: system(SEAL_FENCE_RECORD) };
    // A rotates the root key and its re-encryption runs to the end, erasing generation 1.
    await a.custody().switchRoot(r2);
    // B can tell this from a rollback: the store names a newer generation under another root.
    assert.equal(await b.custody().rootMovedOn(), true, 'B holds the old root');
    assert.equal(await a.custody().rootMovedOn(), false, 'A holds the new one');
    const re = new Reencryptor(() => a.custody(), { ratePerSecond: 100_000 });
    re.kick();
    await re.idle();
    assert.deepEqual(a.custody().keyring.storage.ids(), [2]);
    // B still holds generation 1 only: its write must not be acknowledged.
    await assert.rejects(b.putSecret('x/late', { k: 'precious' }), (e: unknown) => e instanceof StoreError && e.code === 'store_busy');
    c = new SqliteStore({ file, shared: true });
    await c.unlock(r2);
    assert.equal((await c.getSecret('x/old'))?.values['k'], 'v0');
    assert.equal(await c.getSecret('x/late'), null);
    // The key records of the copy from before the switch put back (a rollback): the store
    // names an older generation, so it is never taken for a rotation elsewhere.
    raw.prepare('UPDATE system SET value = ? WHERE key = ?').run(before.kcv, KEY_CHECK_RECORD);
    raw.prepare('UPDATE system SET value = ? WHERE key = ?').run(before.fence, SEAL_FENCE_RECORD);
    raw.close();
    assert.equal(await c.custody().rootMovedOn(), false);
  } finally {
    await a.close();
    await b.close();
    await c?.close();
    done();
  }
});

test('seal fence, seal limit: after another process moved to a new storage key and erased the old one, a write here reloads the keyring and stays readable', async () => {
  const file = tempFile();
  await sealFenceAfterSealLimit(async () => new SqliteStore({ file, shared: true, sealLimit: 1024 }));
});

test('lock: a process whose root another one switched away locks again (its keys destroyed, its calls refused) and unlocks with the new root only', async () => {
  const { done, r1, r2, a, b } = await twoOnOldRoot();
  try {
    await a.putSecret('x/old', { k: 'v0' });
    const held = b.custody(); // what an operation in flight may still hold
    await a.custody().switchRoot(r2);
    await a.putSecret('x/new', { k: 'v1' });
    assert.equal(b.lock(), true);
    assert.equal(b.lock(), false, 'already locked');
    assert.equal(b.isUnlocked(), false);
    await assert.rejects(b.getSecret('x/old'), (e: unknown) => e instanceof StoreError && e.code === 'store_locked');
    assert.throws(() => held.sealer.secretId('x/old'), (e: unknown) => (e as { code?: string }).code === 'crypto_key_destroyed', 'a held custody no longer derives anything');
    const adoption = { recordKey: 'sharing', record: new Uint8Array([1]), judge: () => null };
    assert.deepEqual(await b.adoptKey(r1, adoption), { ok: false, refusal: 'key_check_failed' }, 'the old root no longer opens the store');
    assert.equal(b.isUnlocked(), false);
    assert.equal((await b.adoptKey(r2, adoption)).ok, true);
    assert.equal((await b.getSecret('x/old'))?.values['k'], 'v0');
    assert.equal((await b.getSecret('x/new'))?.values['k'], 'v1');
    await b.putSecret('x/from-b', { k: 'v2' });
    assert.equal((await a.getSecret('x/from-b'))?.values['k'], 'v2');
  } finally {
    await a.close();
    await b.close();
    done();
  }
});
