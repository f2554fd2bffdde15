/**
 * The key custody on postgres (custody.ts): a root-key switch, re-encryption of every
 * table's blobs under concurrent CAS writes, erasure of the old generation (no blob under an
 * older key id left in the database), the new root key required afterwards, and seal counters
 * shared by two store instances on one database (each reserves its own blocks).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { envelopeKeyId, RootKey } from '../../crypto/index.js';
import { custodyOf } from '../open.js';
import { Reencryptor } from '../reencrypt.js';
import { StoreError } from '../types.js';
import { openPostgresStore } from './store.js';
import { startPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';

let server: TestPostgres | undefined;
after(async () => {
  await server?.stop();
});

async function keyIds(url: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ b: Buffer }>(`SELECT path AS b FROM spike_secrets UNION ALL SELECT meta FROM spike_secrets
      UNION ALL SELECT value FROM spike_secret_versions UNION ALL SELECT body FROM spike_policies`);
    return [...new Set(r.rows.map((x) => envelopeKeyId(x.b) ?? -1))].sort();
  } finally {
    await c.end();
  }
}

test('ROT-PG-01: switch, re-encrypt under CAS writes, old generation erased; two instances count seals without overlap', async () => {
  server = await startPostgres();
  const url = await server.createDatabase();
  const root = RootKey.generate();
  const next = RootKey.generate();
  const a = await openPostgresStore({ connectionString: url, sealLimit: 1 << 20 });
  const b = await openPostgresStore({ connectionString: url, sealLimit: 1 << 20 });
  await a.unlock(root);
  await b.unlock(root);
  const ra = custodyOf(a)!.keyring.storage;
  const rb = custodyOf(b)!.keyring.storage;
  assert.ok(rb.reserved(1) >= rb.remaining() + ra.remaining(), 'each instance holds its own block of the shared count');
  for (let i = 0; i < 40; i++) await (i % 2 ? a : b).putSecret(`pg/s${i}`, { k: String(i) });
  await a.putPolicy({ name: 'p', spiffeIdPattern: '^x$', pathPattern: '^pg/.*$', permissions: ['read'] });
  await b.close();

  await custodyOf(a)!.switchRoot(next);
  const job = new Reencryptor(() => custodyOf(a), { ratePerSecond: 100_000 });
  job.kick();
  await Promise.all(Array.from({ length: 10 }, (_, i) => a.putSecret(`pg/s${i}`, { k: `w${i}` }, { cas: 1 })));
  await job.idle();
  assert.deepEqual(await keyIds(url), [2]);
  assert.deepEqual(custodyOf(a)!.keyring.storage.ids(), [2]);
  for (let i = 0; i < 40; i++) {
    assert.equal((await a.getSecret(`pg/s${i}`))?.values['k'], i < 10 ? `w${i}` : String(i));
    assert.equal((await a.getSecretMetadata(`pg/s${i}`))?.metadata.lastVersion, i < 10 ? 2 : 1);
  }
  assert.equal((await a.getPolicy('p'))?.pathPattern, '^pg/.*$');
  await a.close();

  const c = await openPostgresStore({ connectionString: url });
  await assert.rejects(c.unlock(root), (e: unknown) => e instanceof StoreError && e.code === 'store_wrong_key');
  await c.close();
  const d = await openPostgresStore({ connectionString: url });
  await d.unlock(next);
  assert.equal((await d.getSecret('pg/s3'))?.values['k'], 'w3');
  await d.close();
  root.destroy();
  next.destroy();
});

test('ROT-PG-02: a storage key rotated by the seal limit on one instance is picked up by another that reads a record under it (retryable 503 once, never an integrity error)', async () => {
  server ??= await startPostgres();
  const url = await server.createDatabase();
  const root = RootKey.generate();
  const a = await openPostgresStore({ connectionString: url, sealLimit: 1024 });
  const b = await openPostgresStore({ connectionString: url, sealLimit: 1024 });
  await a.unlock(root);
  await b.unlock(root);
  await b.putSecret('pg/from-b', { k: 'b' });
  // Writes on `a` until its storage key rotated by itself (each create seals 3 times).
  const ring = custodyOf(a)!.keyring.storage;
  for (let i = 0; ring.current === 1 && i < 1000; i++) await a.putSecret(`pg/r${i}`, { k: String(i) });
  assert.equal(ring.current, 2, 'the storage key rotated at the seal limit');
  await a.putSecret('pg/new', { k: 'sealed under key 2' });
  assert.deepEqual(custodyOf(b)!.keyring.storage.ids(), [1], 'b has not reserved since');

  // b reads the record under key 2: a retryable refusal (not an integrity failure), then it reads.
  let first: unknown;
  try {
    await b.getSecret('pg/new');
  } catch (e) {
    first = e;
  }
  assert.ok(first instanceof StoreError && first.code === 'store_busy', String(first));
  await custodyOf(b)!.reloadSoon();
  assert.ok(custodyOf(b)!.keyring.storage.ids().includes(2));
  assert.equal((await b.getSecret('pg/new'))?.values['k'], 'sealed under key 2');
  assert.equal((await b.getSecret('pg/from-b'))?.values['k'], 'b');
  await a.close();
  await b.close();
  root.destroy();
});
