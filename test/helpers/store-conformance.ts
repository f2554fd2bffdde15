/**
 * One semantic test suite for every Store backend (test-only code). A backend joins by
 * calling `runStoreConformance(factory)` from its own test file (memory and sqlite do so
 * in src/store/backends.test.ts, postgres in src/store/postgres/store.test.ts). The suite
 * only uses the public Store interface.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../src/crypto/index.js';
import { StoreError, type Store } from '../../src/store/types.js';

export interface OpenedBackend {
  store: Store;
  /** Persistent backends: close and open the same storage again (already unlocked). */
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

export interface BackendFactory {
  name: string;
  persistent: boolean;
  /** True when secret/policy operations need `unlock` first. */
  needsUnlock: boolean;
  open(opts: { root: RootKey; now: () => Date; defaultMaxVersions?: number }): Promise<OpenedBackend>;
}

/** A clock that moves forward one second per reading, from a fixed start. */
export function steppingClock(startMs = Date.UTC(2030, 0, 1)): { now: () => Date; peek: () => number } {
  let t = startMs;
  return { now: () => new Date((t += 1000)), peek: () => t };
}

function entries(o: Record<string, string> | undefined | null): [string, string][] {
  assert.ok(o, 'expected a values object');
  return Object.entries(o).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof StoreError && e.code === code);
}

export function runStoreConformance(factory: BackendFactory): void {
  describe(`store conformance: ${factory.name}`, () => {
    let root: RootKey;
    let opened: OpenedBackend;
    let s: Store;
    let clock: ReturnType<typeof steppingClock>;

    before(async () => {
      root = RootKey.generate();
      clock = steppingClock();
      opened = await factory.open({ root, now: clock.now });
      s = opened.store;
      await s.unlock(root);
    });
    after(async () => {
      await opened.cleanup();
      root.destroy();
    });

    test('versions: puts create 1, 2, 3; get without version = current; get(n) = that version', async () => {
      assert.deepEqual(await s.putSecret('v/a', { k: 'one' }), { version: 1 });
      assert.deepEqual(await s.putSecret('v/a', { k: 'two' }), { version: 2 });
      assert.deepEqual(await s.putSecret('v/a', { k: 'three' }), { version: 3 });
      const cur = await s.getSecret('v/a');
      assert.equal(cur?.version, 3);
      assert.deepEqual(entries(cur?.values), [['k', 'three']]);
      assert.deepEqual(entries((await s.getSecret('v/a', 1))?.values), [['k', 'one']]);
      assert.deepEqual(entries((await s.getSecret('v/a', 0))?.values), [['k', 'three']]);
      assert.equal(await s.getSecret('v/a', 4), null);
      assert.equal(await s.getSecret('v/unknown'), null);
    });

    test('SEC-15: max-versions 10, 25 puts → 16–25 kept, 1–15 gone, oldest=16 (gaps B2: pruned really removed)', async () => {
      for (let i = 1; i <= 25; i++) await s.putSecret('v/prune', { n: String(i) }, { maxVersions: 10 });
      for (let i = 1; i <= 15; i++) assert.equal(await s.getSecret('v/prune', i), null, `version ${i} must be gone`);
      for (let i = 16; i <= 25; i++) assert.deepEqual(entries((await s.getSecret('v/prune', i))?.values), [['n', String(i)]]);
      const md = await s.getSecretMetadata('v/prune');
      assert.ok(md);
      assert.equal(md.metadata.oldestVersion, 16);
      assert.equal(md.metadata.currentVersion, 25);
      assert.equal(md.metadata.maxVersions, 10);
      assert.deepEqual(md.versions.map((v) => v.version), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
      if (opened.reopen) {
        s = await opened.reopen();
        for (let i = 1; i <= 15; i++) assert.equal(await s.getSecret('v/prune', i), null, `version ${i} reappeared after reopen`);
        assert.equal((await s.getSecretMetadata('v/prune'))?.versions.length, 10);
      }
    });

    test('max versions: default for new secrets, kept per secret, lowering it prunes at the next put', async () => {
      for (let i = 1; i <= 5; i++) await s.putSecret('v/max', { n: String(i) }, i === 1 ? { maxVersions: 5 } : {});
      let md = await s.getSecretMetadata('v/max');
      assert.equal(md?.metadata.maxVersions, 5);
      await s.putSecret('v/max', { n: '6' }, { maxVersions: 2 });
      md = await s.getSecretMetadata('v/max');
      assert.deepEqual(md?.versions.map((v) => v.version), [5, 6]);
      assert.equal(md?.metadata.oldestVersion, 5);
      await s.putSecret('v/max', { n: '7' });
      assert.equal((await s.getSecretMetadata('v/max'))?.metadata.maxVersions, 2, 'maxVersions must persist, not reset');
      await rejectsWith(s.putSecret('v/max', { n: 'x' }, { maxVersions: 0 }), 'store_invalid_argument');
      await rejectsWith(s.putSecret('v/max', { n: 'x' }, { maxVersions: 1.5 }), 'store_invalid_argument');
      const fresh = await s.putSecret('v/max-default', { n: '1' });
      assert.equal(fresh.version, 1);
      assert.equal((await s.getSecretMetadata('v/max-default'))?.metadata.maxVersions, 10);
    });

    test('SEC-16: delete current → reads 404, current moves down; delete/undelete/destroy of unknown path → false', async () => {
      for (let i = 1; i <= 3; i++) await s.putSecret('v/del', { n: String(i) });
      assert.equal(await s.deleteSecret('v/del', []), true);
      assert.equal(await s.getSecret('v/del', 3), null, 'deleted version must 404');
      const cur = await s.getSecret('v/del');
      assert.equal(cur?.version, 2);
      const md = await s.getSecretMetadata('v/del');
      assert.equal(md?.metadata.currentVersion, 2);
      assert.ok(md?.versions.find((v) => v.version === 3)?.deletedTime instanceof Date);
      assert.equal(md?.versions.find((v) => v.version === 2)?.deletedTime, null);
      assert.equal(await s.deleteSecret('v/nope', []), false);
      assert.equal(await s.undeleteSecret('v/nope', []), false);
      assert.equal(await s.destroySecret('v/nope', [1]), false);
      // Deleting versions that do not exist still succeeds on a known path (SPIKE: 200).
      assert.equal(await s.deleteSecret('v/del', [99]), true);
    });

    test('gaps B19: undelete with no versions (or [0]) restores the highest deleted version', async () => {
      for (let i = 1; i <= 3; i++) await s.putSecret('v/undel', { n: String(i) });
      await s.deleteSecret('v/undel', []);                       // deletes 3
      assert.equal(await s.undeleteSecret('v/undel', []), true);  // restores 3
      assert.equal((await s.getSecret('v/undel'))?.version, 3);
      await s.deleteSecret('v/undel', [0]);                      // deletes 3 again
      assert.equal(await s.undeleteSecret('v/undel', [0]), true); // [0] = what `spike secret undelete` sends
      assert.equal((await s.getSecret('v/undel'))?.version, 3);
      assert.equal(await s.undeleteSecret('v/undel', []), false, 'nothing deleted → false (404)');
      assert.equal(await s.undeleteSecret('v/undel', [2]), false, 'live version → nothing undeleted');
      await s.deleteSecret('v/undel', [1, 2, 3]);
      assert.equal(await s.getSecret('v/undel'), null, 'all deleted → current 0 → 404');
      const md = await s.getSecretMetadata('v/undel');
      assert.equal(md?.metadata.currentVersion, 0);
      assert.equal(md?.metadata.oldestVersion, 0);
      assert.equal(await s.undeleteSecret('v/undel', [1]), true);
      assert.equal((await s.getSecret('v/undel'))?.version, 1);
      assert.equal((await s.getSecretMetadata('v/undel'))?.metadata.oldestVersion, 1);
    });

    test('delete keeps the first deletion time; a put after deleting the newest never reuses its number', async () => {
      await s.putSecret('v/reuse', { n: '1' });
      await s.putSecret('v/reuse', { n: '2' });
      await s.deleteSecret('v/reuse', [2]);
      const t1 = (await s.getSecretMetadata('v/reuse'))?.versions.find((v) => v.version === 2)?.deletedTime?.getTime();
      await s.deleteSecret('v/reuse', [2]);
      const t2 = (await s.getSecretMetadata('v/reuse'))?.versions.find((v) => v.version === 2)?.deletedTime?.getTime();
      assert.equal(t1, t2);
      assert.deepEqual(await s.putSecret('v/reuse', { n: '3' }), { version: 3 }, 'SPIKE would overwrite deleted version 2');
      assert.equal(await s.getSecret('v/reuse', 2), null, 'deleted version 2 stays deleted');
      await s.deleteSecret('v/reuse', [1, 3]);
      assert.deepEqual(await s.putSecret('v/reuse', { n: '4' }), { version: 4 });
    });

    test('destroy: versions wiped for good; [] = current; current and oldest recomputed', async () => {
      for (let i = 1; i <= 4; i++) await s.putSecret('v/destroy', { n: String(i) });
      assert.equal(await s.destroySecret('v/destroy', [2]), true);
      assert.equal(await s.getSecret('v/destroy', 2), null);
      assert.equal(await s.undeleteSecret('v/destroy', [2]), false, 'a destroyed version cannot be undeleted');
      assert.equal(await s.destroySecret('v/destroy', []), true); // current = 4
      const md = await s.getSecretMetadata('v/destroy');
      assert.deepEqual(md?.versions.map((v) => v.version), [1, 3]);
      assert.equal(md?.metadata.currentVersion, 3);
      assert.equal(md?.metadata.lastVersion, 4);
      await s.destroySecret('v/destroy', [1, 3]);
      assert.equal(await s.getSecret('v/destroy'), null);
      assert.deepEqual(await s.putSecret('v/destroy', { n: '5' }), { version: 5 });
    });

    test('gaps B3: metadata carries the real version numbers and timestamps', async () => {
      const t0 = clock.peek();
      for (let i = 1; i <= 3; i++) await s.putSecret('v/meta', { n: String(i) });
      await s.deleteSecret('v/meta', [1]);
      const md = await s.getSecretMetadata('v/meta');
      assert.ok(md);
      assert.deepEqual(md.versions.map((v) => v.version), [1, 2, 3]);
      const created = md.versions.map((v) => v.createdTime.getTime());
      assert.ok(created[0]! > t0 && created[0]! < created[1]! && created[1]! < created[2]!);
      assert.ok(md.versions[0]!.deletedTime!.getTime() > created[2]!);
      assert.equal(md.metadata.createdTime.getTime(), created[0]);
      assert.equal(md.metadata.updatedTime.getTime(), md.versions[0]!.deletedTime!.getTime());
      assert.equal(md.metadata.oldestVersion, 2);
      assert.equal(md.metadata.currentVersion, 3);
      assert.equal(md.metadata.lastVersion, 3);
      assert.equal(await s.getSecretMetadata('v/meta-none'), null);
    });

    test('cas: 0 = must not exist; N = lastVersion; mismatch → store_cas_mismatch and nothing stored', async () => {
      assert.deepEqual(await s.putSecret('v/cas', { n: '1' }, { cas: 0 }), { version: 1 });
      await rejectsWith(s.putSecret('v/cas', { n: 'x' }, { cas: 0 }), 'store_cas_mismatch');
      assert.deepEqual(await s.putSecret('v/cas', { n: '2' }, { cas: 1 }), { version: 2 });
      await rejectsWith(s.putSecret('v/cas', { n: 'x' }, { cas: 1 }), 'store_cas_mismatch');
      await rejectsWith(s.putSecret('v/cas', { n: 'x' }, { cas: 7 }), 'store_cas_mismatch');
      await rejectsWith(s.putSecret('v/cas-new', { n: 'x' }, { cas: 1 }), 'store_cas_mismatch');
      assert.equal(await s.getSecretMetadata('v/cas-new'), null, 'a failed cas must not create the path');
      const cur = await s.getSecret('v/cas');
      assert.equal(cur?.version, 2);
      assert.deepEqual(entries(cur?.values), [['n', '2']]);
      assert.equal((await s.getSecretMetadata('v/cas'))?.versions.length, 2);
    });

    test('custom metadata: set, kept when absent, replaced when given; prototype names are plain keys', async () => {
      const cm = Object.create(null) as Record<string, string>;
      cm['owner'] = 'team-a';
      cm['__proto__'] = 'p';
      await s.putSecret('v/cm', { k: 'v' }, { customMetadata: cm });
      let md = await s.getSecretMetadata('v/cm');
      assert.deepEqual(entries(md?.metadata.customMetadata), [['__proto__', 'p'], ['owner', 'team-a']]);
      await s.putSecret('v/cm', { k: 'v2' });
      md = await s.getSecretMetadata('v/cm');
      assert.deepEqual(entries(md?.metadata.customMetadata), [['__proto__', 'p'], ['owner', 'team-a']]);
      await s.putSecret('v/cm', { k: 'v3' }, { customMetadata: { owner: 'team-b' } });
      md = await s.getSecretMetadata('v/cm');
      assert.deepEqual(entries(md?.metadata.customMetadata), [['owner', 'team-b']]);
      assert.equal((await s.getSecretMetadata('v/a'))?.metadata.customMetadata, undefined);
    });

    test('SEC-06: __proto__, constructor, prototype, toString, hasOwnProperty round-trip; no pollution', async () => {
      const values = JSON.parse(
        '{"__proto__":"a","constructor":"b","prototype":"c","toString":"d","hasOwnProperty":"e","polluted":"f"}',
      ) as Record<string, string>;
      await s.putSecret('v/proto', values);
      const got = await s.getSecret('v/proto');
      assert.deepEqual(entries(got?.values), [
        ['__proto__', 'a'], ['constructor', 'b'], ['hasOwnProperty', 'e'], ['polluted', 'f'], ['prototype', 'c'], ['toString', 'd'],
      ]);
      assert.equal(Object.prototype.hasOwnProperty.call(got?.values, '__proto__'), true);
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      assert.equal(JSON.stringify(got?.values), JSON.stringify(values));
    });

    test('empty values map is stored and read back as an empty map', async () => {
      assert.deepEqual(await s.putSecret('v/empty', {}), { version: 1 });
      const got = await s.getSecret('v/empty');
      assert.equal(got?.version, 1);
      assert.deepEqual(entries(got?.values), []);
    });

    test('values are copied in and out: later mutation of either side never changes the store', async () => {
      const input: Record<string, string> = { k: 'original' };
      const p = s.putSecret('v/copy', input);
      input['k'] = 'mutated-before-commit';
      await p;
      input['k'] = 'mutated-after';
      const out = await s.getSecret('v/copy');
      assert.ok(out);
      out.values['k'] = 'changed-by-reader';
      assert.deepEqual(entries((await s.getSecret('v/copy'))?.values), [['k', 'original']]);
    });

    test('list: every path once, sorted, including fully deleted ones', async () => {
      await s.putSecret('v/list/b', { k: '1' });
      await s.putSecret('v/list/a', { k: '1' });
      await s.putSecret('v/list/c', { k: '1' });
      await s.deleteSecret('v/list/c', []);
      const all = await s.listSecretPaths();
      const mine = all.filter((p) => p.startsWith('v/list/'));
      assert.deepEqual(mine, ['v/list/a', 'v/list/b', 'v/list/c']);
      assert.deepEqual([...all].sort(), all);
      assert.equal(new Set(all).size, all.length);
    });

    test('list pages: prefix, after, limit and accept; fully deleted and destroyed paths stay listed (as `list` always did)', async () => {
      for (const p of ['pg/b/2', 'pg/a/1', 'pg/b/1', 'pg/a/2', 'pg/ab', 'pgx']) await s.putSecret(p, { k: '1' });
      await s.deleteSecret('pg/a/2', []);
      await s.destroySecret('pg/b/2', [1]);
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/' }), { paths: ['pg/a/1', 'pg/a/2', 'pg/ab', 'pg/b/1', 'pg/b/2'], more: false });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/a' }), { paths: ['pg/a/1', 'pg/a/2', 'pg/ab'], more: false });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/', limit: 2 }), { paths: ['pg/a/1', 'pg/a/2'], more: true });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/', limit: 2, after: 'pg/a/2' }), { paths: ['pg/ab', 'pg/b/1'], more: true });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/', limit: 2, after: 'pg/b/1' }), { paths: ['pg/b/2'], more: false });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/', limit: 1, accept: (p) => p.includes('b') }), { paths: ['pg/ab'], more: true });
      assert.deepEqual(await s.listSecretPathPage({ prefix: 'nothing-here/' }), { paths: [], more: false });
      const all = await s.listSecretPaths();
      assert.deepEqual(all.filter((p) => p.startsWith('pg')), ['pg/a/1', 'pg/a/2', 'pg/ab', 'pg/b/1', 'pg/b/2', 'pgx']);
    });

    test('list pages: a put is listed as soon as it is acknowledged, also while others are written in parallel', async () => {
      await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        await s.putSecret(`pg/par/${String(i).padStart(2, '0')}`, { k: '1' });
        const page = await s.listSecretPathPage({ prefix: `pg/par/${String(i).padStart(2, '0')}` });
        assert.deepEqual(page.paths, [`pg/par/${String(i).padStart(2, '0')}`]);
      }));
      assert.equal((await s.listSecretPathPage({ prefix: 'pg/par/' })).paths.length, 40);
    });

    test('SEC-13: 50 parallel puts to one path → 50 distinct versions, each reading back its own value', async () => {
      const n = 50;
      const acks = await Promise.all(
        Array.from({ length: n }, (_, i) => s.putSecret('v/race', { writer: `w-${i}` }, { maxVersions: 64 })),
      );
      const versions = acks.map((a) => a.version);
      assert.equal(new Set(versions).size, n, 'no two acks may share a version');
      assert.deepEqual([...versions].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1));
      for (let i = 0; i < n; i++) {
        const got = await s.getSecret('v/race', acks[i]!.version);
        assert.deepEqual(entries(got?.values), [['writer', `w-${i}`]]);
      }
    });

    test('SEC-13: 50 parallel puts carrying the same cas → exactly one succeeds, 49 store_cas_mismatch', async () => {
      await s.putSecret('v/race-cas', { writer: 'base' });
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => s.putSecret('v/race-cas', { writer: `w-${i}` }, { cas: 1 })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const bad = results.filter((r) => r.status === 'rejected');
      assert.equal(ok.length, 1);
      assert.equal(bad.length, 49);
      for (const r of bad) {
        assert.ok(r.status === 'rejected' && r.reason instanceof StoreError && r.reason.code === 'store_cas_mismatch');
      }
      assert.equal((await s.getSecretMetadata('v/race-cas'))?.metadata.lastVersion, 2);
    });

    test('policies: upsert keeps createdAt, get/list/delete, missing → null/false, generation bumps', async () => {
      const g0 = await s.policyGeneration();
      const p1 = await s.putPolicy({ name: 'pol-b', spiffeIdPattern: '^spiffe://x/a$', pathPattern: 'secrets/.*', permissions: ['read'] });
      assert.equal(await s.policyGeneration(), g0 + 1);
      assert.deepEqual(p1.permissions, ['read']);
      const p2 = await s.putPolicy({ name: 'pol-b', spiffeIdPattern: '^spiffe://x/a$', pathPattern: 'secrets/db/.*', permissions: ['read', 'write'] });
      assert.equal(p2.createdAt.getTime(), p1.createdAt.getTime());
      assert.ok(p2.updatedAt.getTime() > p1.updatedAt.getTime());
      await s.putPolicy({ name: 'pol-a', spiffeIdPattern: 'spiffe://x/.*', pathPattern: '.*', permissions: ['list'] });
      const got = await s.getPolicy('pol-b');
      assert.deepEqual(got, p2);
      assert.equal(await s.getPolicy('pol-missing'), null);
      const list = await s.listPolicies();
      assert.deepEqual(list.map((p) => p.name).filter((n) => n.startsWith('pol-')), ['pol-a', 'pol-b']);
      const g1 = await s.policyGeneration();
      assert.equal(await s.deletePolicy('pol-missing'), false);
      assert.equal(await s.policyGeneration(), g1, 'no change → no bump');
      assert.equal(await s.deletePolicy('pol-a'), true);
      assert.equal(await s.policyGeneration(), g1 + 1);
      assert.equal(await s.getPolicy('pol-a'), null);
      const proto = await s.putPolicy({ name: '__proto__', spiffeIdPattern: 'a', pathPattern: 'b', permissions: [] });
      assert.deepEqual(await s.getPolicy('__proto__'), proto);
    });

    test('system records: put-if-absent is once-only; put overwrites; missing → null', async () => {
      assert.equal(await s.getSystem('sys/x'), null);
      assert.equal(await s.putSystemIfAbsent('sys/x', new Uint8Array([1, 2, 3])), true);
      assert.equal(await s.putSystemIfAbsent('sys/x', new Uint8Array([9])), false);
      assert.deepEqual(await s.getSystem('sys/x'), new Uint8Array([1, 2, 3]));
      const racers = await Promise.all([1, 2, 3, 4].map((i) => s.putSystemIfAbsent('sys/race', new Uint8Array([i]))));
      assert.equal(racers.filter(Boolean).length, 1);
      await s.putSystem('sys/x', new Uint8Array([4]));
      assert.deepEqual(await s.getSystem('sys/x'), new Uint8Array([4]));
    });

    if (factory.persistent) {
      test('persistence: secrets, metadata, policies and system records survive a reopen exactly', async () => {
        await s.putSecret('v/persist', { a: '1' }, { customMetadata: { c: 'd' } });
        await s.putSecret('v/persist', { a: '2' });
        await s.deleteSecret('v/persist', [1]);
        const before = await s.getSecretMetadata('v/persist');
        const pol = await s.getPolicy('pol-b');
        const gen = await s.policyGeneration();
        assert.ok(opened.reopen);
        s = await opened.reopen();
        assert.deepEqual(await s.getSecretMetadata('v/persist'), before);
        assert.deepEqual(entries((await s.getSecret('v/persist'))?.values), [['a', '2']]);
        assert.deepEqual(await s.getPolicy('pol-b'), pol);
        assert.equal(await s.policyGeneration(), gen);
        assert.deepEqual(await s.getSystem('sys/x'), new Uint8Array([4]));
      });

      test('persistence: after a reopen the path index is rebuilt from storage (prefix pages as before)', async () => {
        const before = await s.listSecretPathPage({ prefix: 'pg/' });
        assert.ok(opened.reopen);
        s = await opened.reopen();
        assert.deepEqual(await s.listSecretPathPage({ prefix: 'pg/' }), before);
        await s.putSecret('pg/after-reopen', { k: '1' });
        assert.ok((await s.listSecretPaths()).includes('pg/after-reopen'));
      });
    }

    if (factory.needsUnlock) {
      test('locked: before unlock, secret and policy operations throw store_locked; system records work', async () => {
        const other = await factory.open({ root, now: clock.now });
        try {
          const l = other.store;
          assert.equal(l.isUnlocked(), false);
          await rejectsWith(l.putSecret('v/x', { k: 'v' }), 'store_locked');
          await rejectsWith(l.getSecret('v/x'), 'store_locked');
          await rejectsWith(l.listSecretPaths(), 'store_locked');
          await rejectsWith(l.listSecretPathPage({}), 'store_locked');
          await rejectsWith(l.getPolicy('p'), 'store_locked');
          await rejectsWith(l.listPolicies(), 'store_locked');
          assert.equal(await l.putSystemIfAbsent('sys/locked', new Uint8Array([1])), true);
          await l.unlock(root);
          assert.equal(l.isUnlocked(), true);
          await rejectsWith(l.unlock(root), 'store_already_unlocked');
        } finally {
          await other.cleanup();
        }
      });
    }

    test('close: later calls throw store_closed', async () => {
      const other = await factory.open({ root, now: clock.now });
      await other.store.unlock(root);
      await other.store.close();
      await rejectsWith(other.store.getSecret('v/x'), 'store_closed');
      await rejectsWith(other.store.getSystem('k'), 'store_closed');
      await other.cleanup();
    });
  });
}
