/**
 * Several `PostgresStore` instances on ONE real PostgreSQL database (issue 8, D13):
 * - SEC-13 across instances: 3 instances × 16 concurrent writers on the same paths →
 *   every acknowledged version is distinct, the versions form 1..N with no gap, and each
 *   reads back its own writer's value from every instance; the same `cas` raced by 48
 *   writers on 3 instances → exactly one wins, 47 `store_cas_mismatch`.
 * - Policies: a policy deleted through instance A → instance B's `policyGeneration()` has
 *   already changed and B reads the policy as gone on its very next call; a LISTEN
 *   connection to the database (test/helpers/pg-policy-listener.ts) receives the new generation.
 * - Bootstrap-once: four separate processes, released at the same instant on a fresh
 *   database, race the advisory-locked schema migration and the first
 *   `putSystemIfAbsent` → all open cleanly (no "already exists" error), schema version 1,
 *   exactly one process wins the record and everyone reads the winner's bytes.
 *
 * When started with SPIKE_PG_RACE_CHILD=1 this file is the child of the last test (it then
 * registers no tests): it waits for SPIKE_PG_RACE_AT, opens the store, races, prints JSON.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RootKey } from '../../src/crypto/index.js';
import { RecordSealer } from '../../src/store/codec.js';
import { Keyring } from '../../src/store/keyring.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/store.js';
import { PG_SCHEMA_VERSION } from '../../src/store/postgres/schema.js';
import { StoreError } from '../../src/store/types.js';
import { listenPolicyChanges } from '../helpers/pg-policy-listener.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

async function child(): Promise<void> {
  const url = process.env['SPIKE_PG_RACE_URL'] ?? '';
  const at = Number(process.env['SPIKE_PG_RACE_AT'] ?? '0');
  while (Date.now() < at) await new Promise((r) => setTimeout(r, 1));
  const store = await openPostgresStore({ connectionString: url, maxConnections: 2 });
  try {
    const mine = new TextEncoder().encode(`winner-${process.pid}`);
    const won = await store.putSystemIfAbsent('bootstrap/once', mine);
    const seen = await store.getSystem('bootstrap/once');
    process.stdout.write(`${JSON.stringify({ pid: process.pid, won, seen: seen ? new TextDecoder().decode(seen) : null })}\n`);
  } finally {
    await store.close();
  }
}

if (process.env['SPIKE_PG_RACE_CHILD'] === '1') {
  child().catch((e: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: e instanceof StoreError ? e.code : 'unexpected', detail: String((e as Error)?.message) })}\n`);
    process.exitCode = 1;
  });
} else {
  describe('postgres: several store instances on one database', () => {
    let srv: TestPostgres;
    const root = RootKey.generate();
    const stores: PostgresStore[] = [];

    before(async () => {
      srv = await startPostgres();
      for (let i = 0; i < 3; i++) stores.push(await openPostgresStore({ connectionString: srv.connectionString, maxConnections: 8 }));
      await Promise.all(stores.map((s) => s.unlock(root)));
    });
    after(async () => {
      for (const s of stores) await s.close();
      await srv?.stop();
      root.destroy();
    });

    test('SEC-13: 3 instances × 16 concurrent writers on the same paths → distinct, gap-free versions, each readable everywhere', async () => {
      const paths = ['multi/a', 'multi/b', 'multi/c'];
      const perWriter = 4;
      const acks: { path: string; version: number; value: string }[] = [];
      await Promise.all(stores.flatMap((s, inst) => Array.from({ length: 16 }, async (_, w) => {
        for (let k = 0; k < perWriter; k++) {
          const path = paths[(w + k) % paths.length]!;
          const value = `i${inst}-w${w}-k${k}`;
          const { version } = await s.putSecret(path, { value }, { maxVersions: 1000 });
          acks.push({ path, version, value });
        }
      })));
      assert.equal(acks.length, 3 * 16 * perWriter);
      for (const path of paths) {
        const mine = acks.filter((a) => a.path === path);
        const versions = mine.map((a) => a.version).sort((x, y) => x - y);
        assert.equal(new Set(versions).size, versions.length, `${path}: two acknowledgements share a version`);
        assert.deepEqual(versions, Array.from({ length: mine.length }, (_, i) => i + 1), `${path}: versions must be 1..N`);
        const md = await stores[2]!.getSecretMetadata(path);
        assert.equal(md?.metadata.lastVersion, mine.length);
        assert.equal(md?.versions.length, mine.length);
      }
      // Every acknowledged write reads back its own value, from each instance.
      for (const [i, a] of acks.entries()) {
        const got = await stores[i % 3]!.getSecret(a.path, a.version);
        assert.equal(got?.values['value'], a.value, `${a.path}@${a.version}`);
      }
    });

    test('SEC-15 across instances: 48 racing writers with maxVersions 5 → exactly the 5 newest versions kept, no stray value rows', async () => {
      const acks = await Promise.all(stores.flatMap((s, inst) =>
        Array.from({ length: 16 }, (_, w) => s.putSecret('multi/prune', { v: `i${inst}-w${w}` }, { maxVersions: 5 }))));
      const versions = acks.map((a) => a.version).sort((x, y) => x - y);
      assert.deepEqual(versions, Array.from({ length: 48 }, (_, i) => i + 1));
      const md = await stores[0]!.getSecretMetadata('multi/prune');
      assert.deepEqual(md?.versions.map((v) => v.version), [44, 45, 46, 47, 48]);
      const ids = new RecordSealer(Keyring.derive(root));
      try {
        const hex = ids.secretId('multi/prune').toString('hex');
        const rows = await srv.psql(`SELECT string_agg(version::text, ',' ORDER BY version) FROM spike_secret_versions WHERE id = '\\x${hex}'::bytea`, 'spike');
        assert.equal(rows.trim(), '44,45,46,47,48', 'pruned versions must be deleted from the table, not just hidden');
      } finally {
        ids.destroy();
      }
    });

    test('SEC-13: the same cas raced by 48 writers on 3 instances → exactly one succeeds', async () => {
      await stores[0]!.putSecret('multi/cas', { v: 'base' });
      const results = await Promise.allSettled(stores.flatMap((s, inst) =>
        Array.from({ length: 16 }, (_, w) => s.putSecret('multi/cas', { v: `i${inst}-w${w}` }, { cas: 1 }))));
      const ok = results.filter((r) => r.status === 'fulfilled');
      assert.equal(ok.length, 1);
      for (const r of results) {
        if (r.status === 'rejected') assert.ok(r.reason instanceof StoreError && r.reason.code === 'store_cas_mismatch', String(r.reason));
      }
      assert.equal((await stores[1]!.getSecretMetadata('multi/cas'))?.metadata.lastVersion, 2);
      // cas 0 on a brand-new path, raced by all: one creates it.
      const fresh = await Promise.allSettled(stores.flatMap((s) =>
        Array.from({ length: 8 }, () => s.putSecret('multi/cas-new', { v: 'x' }, { cas: 0 }))));
      assert.equal(fresh.filter((r) => r.status === 'fulfilled').length, 1);
    });

    test('POL: a policy deleted via A → B sees a new generation and no policy on its very next call; NOTIFY reaches B', async () => {
      const [a, b] = [stores[0]!, stores[1]!];
      await a.putPolicy({ name: 'ops', spiffeIdPattern: '^spiffe://example.org/ops$', pathPattern: 'ops/.*', permissions: ['read'] });
      const seen: number[] = [];
      let wake: (() => void) | null = null;
      const unsubscribe = listenPolicyChanges({ connectionString: srv.connectionString }, (g) => {
        seen.push(g);
        wake?.();
      });
      const waitFor = async (pred: () => boolean, ms: number): Promise<boolean> => {
        const deadline = Date.now() + ms;
        while (!pred() && Date.now() < deadline) {
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, 50);
          });
        }
        return pred();
      };
      try {
        assert.ok(await waitFor(() => seen.length > 0, 60_000), 'the listener reports the current generation once connected');
        const before = await b.policyGeneration();
        assert.equal(seen.at(-1), before);
        assert.ok(await b.getPolicy('ops'));

        assert.equal(await a.deletePolicy('ops'), true);
        // The very next calls on B, without waiting for anything:
        const after = await b.policyGeneration();
        assert.ok(after > before, 'B must see the new generation immediately');
        assert.equal(await b.getPolicy('ops'), null);
        assert.equal((await b.listPolicies()).some((p) => p.name === 'ops'), false);
        assert.equal(await stores[2]!.policyGeneration(), after);
        // NOTIFY is asynchronous: a condition with a generous deadline (its latency is not a test
        // matter; the very-next-call guarantee above is).
        assert.ok(await waitFor(() => seen.includes(after), 60_000), `notification for generation ${after} must arrive`);

        // A put through C also notifies B, with C's generation.
        await stores[2]!.putPolicy({ name: 'ops2', spiffeIdPattern: 'x', pathPattern: 'y', permissions: [] });
        const g3 = await b.policyGeneration();
        assert.equal(g3, after + 1);
        assert.ok(await waitFor(() => seen.includes(g3), 60_000));
        // Failed delete: no bump, no notification.
        assert.equal(await a.deletePolicy('missing'), false);
        assert.equal(await b.policyGeneration(), g3);
      } finally {
        unsubscribe();
      }
    });

    test('policy writes racing on 3 instances: every change bumps the generation exactly once', async () => {
      const g0 = await stores[0]!.policyGeneration();
      await Promise.all(stores.flatMap((s, inst) => Array.from({ length: 10 }, (_, k) =>
        s.putPolicy({ name: `race-${k % 4}`, spiffeIdPattern: `i${inst}`, pathPattern: 'p/.*', permissions: ['list'] }))));
      assert.equal(await stores[1]!.policyGeneration(), g0 + 30);
      const list = await stores[2]!.listPolicies();
      assert.deepEqual(list.filter((p) => p.name.startsWith('race-')).map((p) => p.name), ['race-0', 'race-1', 'race-2', 'race-3']);
    });

    test('bootstrap-once: 4 processes released together race migrations and the first putSystemIfAbsent → exactly one wins', async () => {
      const url = await srv.createDatabase('race_fresh');
      const at = Date.now() + 4000; // after every child has started, even on a loaded machine
      const self = fileURLToPath(import.meta.url);
      const outs = await Promise.all(Array.from({ length: 4 }, () => new Promise<string>((resolve, reject) => {
        const c = spawn(process.execPath, [self], {
          env: { ...process.env, SPIKE_PG_RACE_CHILD: '1', SPIKE_PG_RACE_URL: url, SPIKE_PG_RACE_AT: String(at) },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
        const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
        c.on('error', reject);
        c.on('exit', () => {
          clearTimeout(timer);
          resolve(out);
        });
      })));
      const results = outs.map((o) => JSON.parse(o.trim().split('\n').at(-1) ?? '{}') as { won?: boolean; seen?: string; error?: string });
      for (const r of results) assert.equal(r.error, undefined, `a racer failed: ${JSON.stringify(r)}`);
      assert.equal(results.filter((r) => r.won === true).length, 1, JSON.stringify(results));
      const winner = results.find((r) => r.won)!;
      for (const r of results) assert.equal(r.seen, winner.seen, 'everyone reads the winner\'s record');
      const db = url.slice(url.lastIndexOf('/') + 1);
      assert.equal((await srv.psql('SELECT version FROM spike_schema', db)).trim(), String(PG_SCHEMA_VERSION));
      assert.equal((await srv.psql('SELECT count(*) FROM spike_schema', db)).trim(), '1');
      assert.equal((await srv.psql(`SELECT count(*) FROM spike_counters`, db)).trim(), '1');
    });

    test('in-process: instances racing the first unlock write one key-check record and all unlock', async () => {
      const url = await srv.createDatabase('race_unlock');
      const fresh = await Promise.all(Array.from({ length: 3 }, () => openPostgresStore({ connectionString: url, maxConnections: 2 })));
      try {
        const r2 = RootKey.generate();
        try {
          await Promise.all(fresh.map((s) => s.unlock(r2)));
          const racers = await Promise.all(fresh.map((s, i) => s.putSystemIfAbsent('sys/first', new Uint8Array([i]))));
          assert.equal(racers.filter(Boolean).length, 1);
          const db = url.slice(url.lastIndexOf('/') + 1);
          assert.equal((await srv.psql('SELECT count(*) FROM spike_system', db)).trim(), '4'); // key check + keyring (seal counters) + seal fence + sys/first
        } finally {
          r2.destroy();
        }
      } finally {
        for (const s of fresh) await s.close();
      }
    });
  });
}
