/**
 * The `postgres` backend against a real, throw-away PostgreSQL server
 * (test/helpers/postgres.ts installs it from Debian's packages when missing and FAILS
 * when it cannot): the shared conformance suite, plus backend-specific checks — schema
 * versioning and drift, integrity of swapped/orphaned rows, wrong key, env parsing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { RootKey } from '../../crypto/index.js';
import { RecordSealer } from '../codec.js';
import { Keyring } from '../keyring.js';
import { SEAL_FENCE_RECORD } from '../seal-fence.js';
import { sealFenceAfterSealLimit } from '../../../test/helpers/seal-fence.js';
import { runStoreConformance } from '../../../test/helpers/store-conformance.js';
import { openPostgresStore, PostgresStore } from './store.js';
import { postgresOptionsFromEnv } from '../../config/index.js';
import { PG_SCHEMA_VERSION } from './schema.js';
import { openStore } from '../open.js';
import { StoreError, type Store } from '../types.js';
import pg from 'pg';
import { KEY_CHECK_RECORD } from '../key-check.js';
import { startPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';
import { LEGACY_CONTENT, legacyRoot, loadLegacyPostgres } from '../../../test/helpers/legacy-store.js';

let server: TestPostgres | undefined;
let starting: Promise<TestPostgres> | undefined;

/** One server per file, started lazily by whichever suite needs it first. */
function pgServer(): Promise<TestPostgres> {
  starting ??= startPostgres().then((s) => (server = s));
  return starting;
}

after(async () => {
  await server?.stop();
});

runStoreConformance({
  name: 'postgres',
  persistent: true,
  needsUnlock: true,
  async open({ root, now, defaultMaxVersions }) {
    const srv = await pgServer();
    const url = await srv.createDatabase();
    const mk = (): Promise<PostgresStore> =>
      openPostgresStore({ connectionString: url, now, ...(defaultMaxVersions ? { defaultMaxVersions } : {}) });
    let current: Store = await mk();
    return {
      store: current,
      reopen: async () => {
        await current.close();
        current = await mk();
        await current.unlock(root);
        return current;
      },
      cleanup: async () => {
        await current.close();
      },
    };
  },
});

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof StoreError && e.code === code);
}

describe('postgres backend specifics', () => {
  let srv: TestPostgres;
  before(async () => {
    srv = await pgServer();
  });

  test('openStore(kind postgres) opens a migrated, locked store; the schema version is recorded', async () => {
    const url = await srv.createDatabase();
    const s = await openStore({ kind: 'postgres', connectionString: url, maxConnections: 2 });
    try {
      assert.equal(s.kind, 'postgres');
      assert.equal(s.isUnlocked(), false);
      await rejectsWith(s.getSecret('a/b'), 'store_locked');
      const db = url.slice(url.lastIndexOf('/') + 1);
      assert.equal((await srv.psql('SELECT version FROM spike_schema', db)).trim(), String(PG_SCHEMA_VERSION));
    } finally {
      await s.close();
    }
  });

  test('STO-08: schema newer than the code → store_schema_too_new; a changed column → store_schema_invalid', async () => {
    const url = await srv.createDatabase();
    const db = url.slice(url.lastIndexOf('/') + 1);
    await (await openPostgresStore({ connectionString: url })).close();
    await srv.psql(`UPDATE spike_schema SET version = ${PG_SCHEMA_VERSION + 1}`, db);
    await rejectsWith(openPostgresStore({ connectionString: url }), 'store_schema_too_new');
    await srv.psql(`UPDATE spike_schema SET version = ${PG_SCHEMA_VERSION}`, db);
    await srv.psql('ALTER TABLE spike_secrets ADD COLUMN path_plain text', db);
    await rejectsWith(openPostgresStore({ connectionString: url }), 'store_schema_invalid');
  });

  test('a database holding foreign spike_* tables is refused, never adopted or altered', async () => {
    const url = await srv.createDatabase();
    const db = url.slice(url.lastIndexOf('/') + 1);
    await srv.psql('CREATE TABLE spike_secrets (id text PRIMARY KEY, path text)', db);
    await rejectsWith(openPostgresStore({ connectionString: url }), 'store_schema_invalid');
    assert.equal((await srv.psql(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'spike_schema'`, db)).trim(), '0');
  });

  test('STO-02 / STO-05: swapped value rows → store_integrity; versions without metadata → store_integrity, not "missing"', async () => {
    const url = await srv.createDatabase();
    const db = url.slice(url.lastIndexOf('/') + 1);
    const root = RootKey.generate();
    const s = await openPostgresStore({ connectionString: url });
    const ids = new RecordSealer(Keyring.derive(root));
    try {
      await s.unlock(root);
      await s.putSecret('app/a', { k: 'value-a' });
      await s.putSecret('app/b', { k: 'value-b' });
      const hex = (p: string): string => `'\\x${ids.secretId(p).toString('hex')}'::bytea`;
      // Swap the two value blobs with plain SQL, as an attacker with database access would.
      await srv.psql(`UPDATE spike_secret_versions v SET value = o.value FROM spike_secret_versions o
                       WHERE (v.id, o.id) IN ((${hex('app/a')}, ${hex('app/b')}), (${hex('app/b')}, ${hex('app/a')}))`, db);
      await rejectsWith(s.getSecret('app/a'), 'store_integrity');
      await rejectsWith(s.getSecret('app/b'), 'store_integrity');
      await s.putSecret('app/c', { k: 'value-c' });
      await srv.psql(`DELETE FROM spike_secrets WHERE id = ${hex('app/c')}`, db);
      await rejectsWith(s.getSecret('app/c'), 'store_integrity');
      await rejectsWith(s.getSecretMetadata('app/c'), 'store_integrity');
      await rejectsWith(s.putSecret('app/c', { k: 'x' }), 'store_integrity');
    } finally {
      ids.destroy();
      await s.close();
      root.destroy();
    }
  });

  test('seal fence across instances: after another instance moved to a new storage key (seal limit) and erased the old one, a write here reloads its keyring and stays readable', async () => {
    const url = await srv.createDatabase();
    await sealFenceAfterSealLimit(() => openPostgresStore({ connectionString: url, sealLimit: 1024 }));
  });


  test('store key check: a second instance unlocking with another root key → store_wrong_key', async () => {
    const url = await srv.createDatabase();
    const a = await openPostgresStore({ connectionString: url });
    const b = await openPostgresStore({ connectionString: url });
    const r1 = RootKey.generate();
    const r2 = RootKey.generate();
    try {
      await a.unlock(r1);
      await rejectsWith(b.unlock(r2), 'store_wrong_key');
      assert.equal(b.isUnlocked(), false);
      await b.unlock(r1);
      await a.putSecret('k/x', { v: '1' });
      assert.equal((await b.getSecret('k/x'))?.version, 1);
    } finally {
      await a.close();
      await b.close();
      r1.destroy();
      r2.destroy();
    }
  });

  test('a database written before the single key check still unlocks with its root key; a wrong key → store_wrong_key', async () => {
    const url = await srv.createDatabase();
    const db = url.slice(url.lastIndexOf('/') + 1);
    await (await openPostgresStore({ connectionString: url })).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await loadLegacyPostgres(client);
    } finally {
      await client.end();
    }
    const s = await openPostgresStore({ connectionString: url });
    const root = legacyRoot();
    try {
      await rejectsWith(s.unlock(RootKey.generate()), 'store_wrong_key');
      assert.deepEqual(await s.adoptKey(RootKey.generate(), { recordKey: 'sharing', record: new Uint8Array([1]), judge: () => null }),
        { ok: false, refusal: 'key_check_failed' });
      assert.equal(s.isUnlocked(), false);
      await s.unlock(root);
      const got = await s.getSecret(LEGACY_CONTENT.path);
      assert.equal(got?.version, LEGACY_CONTENT.current.version);
      assert.deepEqual({ ...got?.values }, LEGACY_CONTENT.current.values);
      assert.equal((await s.getPolicy(LEGACY_CONTENT.policy.name))?.pathPattern, LEGACY_CONTENT.policy.pathPattern);
      assert.equal((await srv.psql('SELECT string_agg(key, \',\' ORDER BY key) FROM spike_system', db)).trim(), [KEY_CHECK_RECORD, 'keyring', 'sharing', SEAL_FENCE_RECORD, 'store/key-check'].sort().join(',')); // keyring: the seal counters, written at unlock (with the seal fence)
    } finally {
      await s.close();
      root.destroy();
    }
  });

  test('getSecret(current) when the newest stored version is deleted reads the live one below it', async () => {
    const url = await srv.createDatabase();
    const root = RootKey.generate();
    const s = await openPostgresStore({ connectionString: url });
    try {
      await s.unlock(root);
      for (let i = 1; i <= 3; i++) await s.putSecret('cur/x', { n: String(i) });
      await s.deleteSecret('cur/x', [3]);
      const got = await s.getSecret('cur/x');
      assert.equal(got?.version, 2);
      assert.equal(got?.values['n'], '2');
      await s.deleteSecret('cur/x', [1, 2]);
      assert.equal(await s.getSecret('cur/x'), null);
      assert.equal(await s.getSecret('cur/x', 2 ** 40), null, 'a version beyond int4 is simply absent');
    } finally {
      await s.close();
      root.destroy();
    }
  });

  test('server unreachable at open → store_unavailable (no hang, no crash)', async () => {
    // A port nobody listens on: one we bind and close again.
    const port = await new Promise<number>((resolve) => {
      const x = net.createServer().listen(0, '127.0.0.1', () => {
        const a = x.address();
        const p = typeof a === 'object' && a ? a.port : 0;
        x.close(() => resolve(p));
      });
    });
    const t0 = Date.now();
    await rejectsWith(openPostgresStore({ connectionString: `postgresql://postgres@127.0.0.1:${port}/spike`, connectTimeoutMs: 2000 }), 'store_unavailable');
    // No hang: bounded by the connect timeout; generous for a loaded machine.
    assert.ok(Date.now() - t0 < 30_000);
  });

  test('postgresOptionsFromEnv: SPIKE_NEXUS_DATABASE_URL required, pool size and durations parsed, errors never echo values', () => {
    assert.throws(() => postgresOptionsFromEnv({}), /SPIKE_NEXUS_DATABASE_URL/);
    assert.throws(() => postgresOptionsFromEnv({ SPIKE_NEXUS_DATABASE_URL: 'mysql://u:hunter2@x/db' }),
      (e: unknown) => e instanceof Error && !e.message.includes('hunter2'));
    const o = postgresOptionsFromEnv({
      SPIKE_NEXUS_DATABASE_URL: 'postgresql://spike@db:5432/spike',
      SPIKE_NEXUS_DB_MAX_OPEN_CONNS: '25',
      SPIKE_NEXUS_DB_OPERATION_TIMEOUT: '2s',
      SPIKE_NEXUS_DB_CONN_MAX_LIFETIME: '30m',
    });
    assert.deepEqual(o, {
      connectionString: 'postgresql://spike@db:5432/spike', maxConnections: 25, operationTimeoutMs: 2000,
      connMaxLifetimeMs: 1_800_000, connectTimeoutMs: 5000,
    });
    assert.equal(postgresOptionsFromEnv({ SPIKE_NEXUS_DATABASE_URL: 'postgres://x/y' }).maxConnections, 10);
    assert.throws(() => postgresOptionsFromEnv({ SPIKE_NEXUS_DATABASE_URL: 'postgres://x/y', SPIKE_NEXUS_DB_MAX_OPEN_CONNS: 'ten' }),
      /SPIKE_NEXUS_DB_MAX_OPEN_CONNS/);
  });
});
