/**
 * PostgreSQL going away under load (issue 8 acceptance, D12): two store instances run 16
 * writers/readers while the real server is shut down (`fast`: sessions terminated; then
 * `immediate`: crash-like, WAL replayed at start) and started again a moment later.
 *
 * Required: while it is down every operation fails with `StoreError('store_unavailable')`
 * — quickly, never another code, never an uncaught exception or unhandled rejection (the
 * pool's and clients' 'error' events are handled); once the server is back the SAME store
 * objects succeed again by themselves (no reopen); every acknowledged write is still
 * there with its value afterwards; a LISTEN connection (test/helpers/pg-policy-listener.ts)
 * reconnects and delivers the next policy change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../src/crypto/index.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/store.js';
import { StoreError } from '../../src/store/types.js';
import { listenPolicyChanges } from '../helpers/pg-policy-listener.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds or `ms` passed (generous: the machine may be loaded); returns whether it holds. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(25);
  return cond();
}

interface LoadReport {
  acked: { path: string; version: number; value: string }[];
  errorCodes: Map<string, number>;
  errorsWhileDown: number;
  okAfterUp: number[];
  slowestFailureMs: number;
}

describe('postgres: server restarted under load', () => {
  let srv: TestPostgres;
  const root = RootKey.generate();
  const stores: PostgresStore[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => {
    uncaught.push(e);
  };

  before(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    srv = await startPostgres();
    for (let i = 0; i < 2; i++) {
      stores.push(await openPostgresStore({
        connectionString: srv.connectionString, maxConnections: 6, connectTimeoutMs: 2000, operationTimeoutMs: 5000,
      }));
    }
    await Promise.all(stores.map((s) => s.unlock(root)));
  });
  after(async () => {
    for (const s of stores) await s.close();
    await srv?.stop();
    root.destroy();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  /** 2 instances × 8 workers (puts, reads, policy generation) around `outage`. */
  async function underLoad(tag: string, outage: (state: { down: boolean; upAt: number }, report: LoadReport) => Promise<void>): Promise<LoadReport> {
    const report: LoadReport = { acked: [], errorCodes: new Map(), errorsWhileDown: 0, okAfterUp: [0, 0], slowestFailureMs: 0 };
    const state = { down: false, upAt: Number.POSITIVE_INFINITY };
    let stop = false;
    const workers = stores.flatMap((s, inst) => Array.from({ length: 8 }, async (_, w) => {
      const path = `load/${tag}/i${inst}w${w}`;
      for (let k = 0; !stop; k++) {
        const value = `${tag}-${inst}-${w}-${k}`;
        const t0 = Date.now();
        try {
          if (k % 3 === 2) {
            await s.getSecret(path);
            await s.policyGeneration();
          } else {
            const { version } = await s.putSecret(path, { value }, { maxVersions: 100_000 });
            report.acked.push({ path, version, value });
          }
          if (t0 > state.upAt) report.okAfterUp[inst]! += 1;
        } catch (e) {
          const code = e instanceof StoreError ? e.code : `non-store-error:${(e as Error)?.constructor?.name ?? typeof e}`;
          report.errorCodes.set(code, (report.errorCodes.get(code) ?? 0) + 1);
          if (state.down) {
            report.errorsWhileDown++;
            report.slowestFailureMs = Math.max(report.slowestFailureMs, Date.now() - t0);
          }
          await sleep(20);
        }
      }
    }));
    try {
      // The load is running before the outage: a count of acknowledged writes, not a time window.
      await until(() => report.acked.length > 50, 60_000);
      await outage(state, report);
      // Recovery: both instances must succeed again on their own (generous deadline: a loaded machine).
      await until(() => report.okAfterUp[0]! >= 20 && report.okAfterUp[1]! >= 20, 90_000);
    } finally {
      stop = true; // whatever happened, the workers end (a looping worker would hang the runner)
      await Promise.all(workers);
    }
    return report;
  }

  async function checkReport(report: LoadReport, t: { diagnostic: (m: string) => void }): Promise<void> {
    t.diagnostic(`acked writes ${report.acked.length}, failures while down ${report.errorsWhileDown} `
      + `(slowest ${report.slowestFailureMs} ms), codes ${JSON.stringify([...report.errorCodes])}, ok after up ${report.okAfterUp.join('/')}`);
    assert.deepEqual(uncaught, [], 'no uncaught exception or unhandled rejection');
    assert.deepEqual([...report.errorCodes.keys()].filter((c) => c !== 'store_unavailable'), [],
      `only store_unavailable while down, got ${JSON.stringify([...report.errorCodes])}`);
    assert.ok(report.errorsWhileDown > 0, 'the outage must have been observed');
    // Prompt = bounded by the store's own timeouts (connect 2 s, operation 5 s), not by how long
    // the server stays down; generous for a loaded machine. The outage lasts until failures were
    // seen (below), so a call hanging until the server is back would show up as none at all.
    assert.ok(report.slowestFailureMs < 15_000, `failures must be prompt (slowest ${report.slowestFailureMs} ms)`);
    assert.ok(report.okAfterUp.every((n) => n >= 20), `both instances recover by themselves: ${report.okAfterUp.join(', ')}`);
    assert.ok(report.acked.length > 50, 'load actually ran');
    // No acknowledged write lost: each one reads back, from a store opened afterwards.
    const check = await openPostgresStore({ connectionString: srv.connectionString, maxConnections: 4 });
    try {
      await check.unlock(root);
      for (const a of report.acked) {
        const got = await check.getSecret(a.path, a.version);
        assert.equal(got?.values['value'], a.value, `acknowledged write ${a.path}@${a.version} lost`);
      }
      const perPath = new Map<string, number[]>();
      for (const a of report.acked) perPath.set(a.path, [...(perPath.get(a.path) ?? []), a.version]);
      for (const [p, vs] of perPath) assert.equal(new Set(vs).size, vs.length, `${p}: duplicate versions`);
    } finally {
      await check.close();
    }
  }

  test('fast shutdown under load: store_unavailable while down, recovers by itself, nothing acknowledged lost, NOTIFY reconnects', async (t) => {
    const gens: number[] = [];
    const unsubscribe = listenPolicyChanges(
      { connectionString: srv.connectionString, connectTimeoutMs: 2000, retryMs: { min: 50, max: 400 } },
      (g) => gens.push(g),
    );
    const report = await underLoad('fast', async (state, rep) => {
      state.down = true;
      await srv.down('fast');
      // While down: direct calls fail with store_unavailable, system reads too.
      await assert.rejects(stores[0]!.getSystem('x'), (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable');
      await assert.rejects(stores[1]!.policyGeneration(), (e: unknown) => e instanceof StoreError && e.code === 'store_unavailable');
      // Down for at least 600 ms (the scenario) and until the workers have seen failures.
      const downAt = Date.now();
      await until(() => rep.errorsWhileDown >= 16 && Date.now() - downAt >= 600, 60_000);
      await srv.up();
      state.down = false;
      state.upAt = Date.now();
    });
    await checkReport(report, t);
    // The listener reconnected: a change made through instance 0 reaches instance 1's subscriber.
    await stores[0]!.putPolicy({ name: 'after-restart', spiffeIdPattern: 'a', pathPattern: 'b', permissions: ['read'] });
    const want = await stores[1]!.policyGeneration();
    await until(() => gens.includes(want), 60_000);
    unsubscribe();
    assert.ok(gens.includes(want), `listener must deliver generation ${want} after the restart (got ${gens.join(',')})`);
  });

  test('crash-like shutdown (immediate) under load: same guarantees, WAL replay keeps every acknowledged write', async (t) => {
    const report = await underLoad('immediate', async (state, rep) => {
      state.down = true;
      await srv.down('immediate');
      const downAt = Date.now();
      await until(() => rep.errorsWhileDown >= 16 && Date.now() - downAt >= 400, 60_000);
      await srv.up();
      state.down = false;
      state.upAt = Date.now();
    });
    await checkReport(report, t);
  });
});
