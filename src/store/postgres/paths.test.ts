/**
 * The path index across instances on a real PostgreSQL (two stores = two Nexus on one
 * database): a path written through A is in the next list on B; paging on B while A writes
 * returns every path acknowledged before the first page exactly once; rows from before the
 * `created_tx` migration are listed; the "created since" read is an index range scan.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { startPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';
import { openPostgresStore, type PostgresStore } from './store.js';

describe('postgres path index across instances', () => {
  let srv: TestPostgres;
  let root: RootKey;
  before(async () => {
    srv = await startPostgres();
    root = RootKey.generate();
  });
  after(async () => {
    root.destroy();
    await srv?.stop();
  });

  async function pair(): Promise<{ a: PostgresStore; b: PostgresStore; url: string; close: () => Promise<void> }> {
    const url = await srv.createDatabase();
    const a = await openPostgresStore({ connectionString: url, maxConnections: 4 });
    const b = await openPostgresStore({ connectionString: url, maxConnections: 4 });
    await a.unlock(root);
    await b.unlock(root);
    return { a, b, url, close: async () => { await a.close(); await b.close(); } };
  }

  test('an index built over several pages while A writes has every path A acknowledged before the build, once', async () => {
    const { a, url, close } = await pair();
    const want = Array.from({ length: 1203 }, (_, i) => `many/${String(i * 2).padStart(5, '0')}`); // 2 full pages + a part
    // In batches: 1,203 writes at once on a pool of 4 wait for a connection longer than the
    // pool's connect timeout when the machine is loaded (store_unavailable), which is not what
    // this test is about.
    for (let i = 0; i < want.length; i += 32) await Promise.all(want.slice(i, i + 32).map((p) => a.putSecret(p, { k: '1' })));
    const c = await openPostgresStore({ connectionString: url, maxConnections: 4 });
    let writing = true;
    const extra: string[] = [];
    const writer = (async () => {
      for (let i = 0; writing && i < 400; i++) {
        const p = `many/${String(i * 2 + 1).padStart(5, '0')}`; // between existing keys' paths
        await a.putSecret(p, { k: '1' });
        extra.push(p);
      }
    })();
    try {
      await c.unlock(root); // the build starts here, in the background, while A writes
      const listed = (await c.listSecretPathPage({ prefix: 'many/' })).paths;
      writing = false;
      await writer;
      assert.equal(new Set(listed).size, listed.length, 'no duplicates');
      for (const p of want) assert.ok(listed.includes(p), `${p} is listed`);
      const after = (await c.listSecretPathPage({ prefix: 'many/' })).paths;
      assert.deepEqual(after, [...want, ...extra].sort(), 'the next list has every write');
    } finally {
      writing = false;
      await writer;
      await c.close();
      await close();
    }
  });

  test('a path written on A is in the next list on B (and B built its index before A wrote)', async () => {
    const { a, b, close } = await pair();
    try {
      await a.putSecret('x/before', { k: '1' });
      assert.deepEqual((await b.listSecretPathPage({ prefix: 'x/' })).paths, ['x/before']);
      for (let i = 0; i < 20; i++) {
        const p = `x/${String(i).padStart(2, '0')}`;
        await a.putSecret(p, { k: '1' }); // acknowledged on A …
        assert.ok((await b.listSecretPathPage({ prefix: p })).paths.includes(p), `${i}: … so listed on B`);
      }
      // B's own writes and A's, interleaved, both sides see the union
      await b.putSecret('x/from-b', { k: '1' });
      const onA = (await a.listSecretPathPage({ prefix: 'x/' })).paths;
      const onB = (await b.listSecretPathPage({ prefix: 'x/' })).paths;
      assert.deepEqual(onA, onB);
      assert.equal(onA.length, 22);
    } finally {
      await close();
    }
  });

  test('paging on B under concurrent writes on A: every path acknowledged before page 1 exactly once, no duplicates', async () => {
    const { a, b, close } = await pair();
    try {
      const initial = Array.from({ length: 300 }, (_, i) => `pg/${String(i * 2).padStart(4, '0')}`);
      for (let i = 0; i < initial.length; i += 32) await Promise.all(initial.slice(i, i + 32).map((p) => a.putSecret(p, { k: '1' })));
      let writing = true;
      let n = 0;
      const writer = (async () => {
        while (writing) await a.putSecret(`pg/${String(n++ * 2 + 1).padStart(4, '0')}`, { k: '1' }); // lands between earlier paths
      })();
      const got: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await b.listSecretPathPage({ prefix: 'pg/', limit: 25, ...(cursor !== undefined ? { after: cursor } : {}) });
        got.push(...page.paths);
        if (!page.more) break;
        cursor = page.paths[page.paths.length - 1];
      }
      writing = false;
      await writer;
      assert.equal(new Set(got).size, got.length, 'no path twice');
      assert.deepEqual([...got].sort(), got);
      for (const p of initial) assert.ok(got.includes(p), 'every path acknowledged before the first page is listed');
    } finally {
      await close();
    }
  });

  test('rows from before the created_tx column (NULL) are listed; the since-read uses the index', async () => {
    const { a, b, url, close } = await pair();
    try {
      await a.putSecret('old/1', { k: '1' });
      const db = new URL(url).pathname.slice(1);
      await srv.psql('UPDATE spike_secrets SET created_tx = NULL', db); // as if written by schema version 1
      const c = await openPostgresStore({ connectionString: url, maxConnections: 2 });
      try {
        await c.unlock(root);
        assert.deepEqual((await c.listSecretPathPage({ prefix: 'old/' })).paths, ['old/1']);
      } finally {
        await c.close();
      }
      await srv.psql(`INSERT INTO spike_secrets (id, path, meta) SELECT decode(md5(g::text), 'hex'), '\\x00', '\\x00' FROM generate_series(1, 20000) g`, db);
      await srv.psql('ANALYZE spike_secrets', db);
      const plan = await srv.psql(`EXPLAIN SELECT id FROM spike_secrets WHERE created_tx >= pg_snapshot_xmin(pg_current_snapshot())
        AND NOT pg_visible_in_snapshot(created_tx, pg_current_snapshot())`, db);
      assert.match(plan, /Index (Only )?Scan using spike_secrets_created_tx|Bitmap Index Scan on spike_secrets_created_tx/);
      void b;
    } finally {
      await close();
    }
  });
});
