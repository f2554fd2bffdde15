/**
 * `postgres` backend: several Nexus instances share one PostgreSQL database (issue 8).
 * Sealing, key check, decoding and listing come from the shared core (../sealed.ts), so
 * both persistent backends hold exactly the same blobs; this file holds the pool and the
 * transactions, writes.ts what the write transactions do, sql.ts the statements.
 *
 * Driver: `pg` (node-postgres) rather than `postgres` (porsager): it is the long-standing,
 * most widely deployed client with a separately maintained pool (`pg-pool`), explicit
 * control over checkout/release (a read-modify-write needs ONE connection for its whole
 * transaction), bytea ↔ Buffer without copies through strings, and TypeScript types.
 *
 * Across instances (D13): every secret write is one transaction that first locks the
 * secret's metadata row (`SELECT … FOR UPDATE`); a new path is created with
 * `INSERT … ON CONFLICT DO NOTHING`, and losing that race re-reads under the lock. So two
 * instances can never hand out the same version, and `cas` is checked against the locked
 * row (mismatch → `store_cas_mismatch`). Policy writes lock the one-row generation counter
 * first (one global order: no deadlocks), bump it in the same transaction and
 * `pg_notify('spike_policy_changed', <generation>)`, delivered at commit to any listener.
 * `policyGeneration()` reads that row (one index lookup — cheap enough per request).
 * `putSystemIfAbsent` is `INSERT … ON CONFLICT DO NOTHING`: exactly one instance wins. The
 * key records are settled under a transaction-scoped advisory lock, so instances racing
 * the first unlock agree on the first writer's record.
 *
 * Reads are single statements (one snapshot): a read never mixes metadata and values of
 * two different commits. Durability (D12): the default `synchronous_commit=on` — a write
 * resolves after its COMMIT returned, i.e. after the WAL was flushed.
 *
 * Failures: a down or unreachable server, a dropped connection or an operation timeout →
 * `StoreError('store_unavailable')` (the API answers 503), never a crash: the pool's and
 * every client's `'error'` events are handled, broken connections are discarded, and the
 * next operation opens a fresh one, so the store recovers by itself once the server is
 * back. A write whose COMMIT was cut off has an unknown outcome (like any networked
 * database); it reports `store_unavailable`. Serialization failures and deadlocks
 * (40001/40P01) are retried.
 */
import type pg from 'pg';
import { pgDriver } from '../drivers.js';
import type { RootKey } from '../../crypto/index.js';
import { createLogThrottle } from '../../lib/index.js';
import type { KeyRecordsPlan } from '../key-check.js';
import { visitPathPages, type PathRow } from '../path-catalog.js';
import { SealedStore, type MetaRow, type ReadRow, type SealedSecretWrite } from '../sealed.js';
import { DEFAULTS, type PostgresStoreOptions } from './options.js';
import { StoreError, type KeyAdoption, type PolicyRecord, type StoreFailureCause, type StoreOutcome } from '../types.js';
import { budgetMs, connectWithin, deadlineTimerError, errCode, isRetryable, isServerAnswer, pgToStoreError, withOutcome } from './errors.js';
import { migratePostgres } from './schema.js';
import { PostgresAnchor } from './anchor.js';
import type { BlobSwap, KeyRecordsUpdate, StaleBlob } from '../key-custody.js';
import { pgReplaceBlobs, pgScanStale, pgUpdateKeyRecords } from './custody.js';
import { POLICY_CHANNEL, pathsSinceQuery, q, type Run, snapshotXmax, splitSnapshot, type SnapRow } from './sql.js';
import { pgRemovePolicy, pgSettleKeyRecords, pgWritePolicy, pgWriteSecret } from './writes.js';

export { POLICY_CHANNEL, pgToStoreError, type PostgresStoreOptions };

/** Largest `integer` (int4): the schema's version column. */
const MAX_PG_INT = 2 ** 31 - 1;

export class PostgresStore extends SealedStore {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #maxRetries: number;
  /** The rollback anchor's commit counter (anchor.ts). */
  readonly anchor: PostgresAnchor = new PostgresAnchor((query, write) => this.#query(query, write));

  /** Use `openPostgresStore` (or `openStore`): it also migrates the schema. */
  constructor(opts: PostgresStoreOptions) {
    super(opts, MAX_PG_INT);
    if (typeof opts.connectionString !== 'string' || opts.connectionString.length === 0) {
      throw new StoreError('store_invalid_argument');
    }
    this.#maxRetries = opts.maxRetries ?? DEFAULTS.maxRetries;
    const operationTimeoutMs = opts.operationTimeoutMs ?? DEFAULTS.operationTimeoutMs;
    const cfg: pg.PoolConfig = {
      connectionString: opts.connectionString,
      max: Math.max(1, opts.maxConnections ?? DEFAULTS.maxConnections),
      idleTimeoutMillis: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      maxLifetimeSeconds: Math.ceil((opts.connMaxLifetimeMs ?? DEFAULTS.connMaxLifetimeMs) / 1000),
      keepAlive: true,
      application_name: 'spike-nexus',
    };
    if (operationTimeoutMs > 0) {
      cfg.statement_timeout = operationTimeoutMs;
      cfg.query_timeout = operationTimeoutMs + 1000;
      cfg.idle_in_transaction_session_timeout = operationTimeoutMs * 2;
    }
    this.#pool = new (pgDriver().Pool)(cfg);
    // Without these listeners a server restart (idle clients losing their socket) or a
    // connection dropping under a checked-out client would crash the process.
    this.#pool.on('error', (err) => this.#onConnectionError(err));
    this.#pool.on('connect', (client) => {
      client.on('error', (err) => this.#onConnectionError(err));
    });
  }

  /** Lost connections, logged at a bounded rate (a restart drops every pooled connection at once). */
  readonly #lost = this.logger ? createLogThrottle(this.logger, { intervalMs: 30_000 }) : undefined;

  #onConnectionError(err: unknown): void {
    this.#lost?.warn('postgres_connection_lost', { err: 'store_unavailable', code: errCode(err) }, 'postgres connection lost; it will be replaced on next use');
  }

  /** Runs the schema migrations (safe when several instances start at once). */
  async init(): Promise<void> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      await migratePostgres(client);
    } catch (e) {
      if (!(e instanceof StoreError)) broken = e instanceof Error ? e : new Error('migration failed');
      throw pgToStoreError(e);
    } finally {
      client.release(broken);
    }
  }

  // --- plumbing -----------------------------------------------------------------------
  // Inside a request every call below shares that request's deadline (../deadline.ts): the
  // connect and each statement get only what is left of it, so a request never waits longer
  // than SPIKE_NEXUS_DB_OPERATION_TIMEOUT in total. Each failure says what it did to the data
  // (`outcome`): nothing (`not_applied`) unless a COMMIT or a one-statement write was sent.

  /** Maps `e`, records what was applied, and reports it to the health tracker. */
  #failed(e: unknown, outcome: StoreOutcome): StoreError {
    const err = withOutcome(pgToStoreError(e), outcome);
    this.health.failed(err);
    return err;
  }

  async #connect(): Promise<pg.PoolClient> {
    this.checkOpen();
    // Every pooled connection busy: a wait that times out means slow statements, not an
    // unreachable server (pg-pool words both the same way).
    const full = this.#pool.idleCount === 0 && this.#pool.totalCount >= this.#pool.options.max;
    try {
      return await connectWithin(this.#pool, budgetMs());
    } catch (e) {
      if (full && !(e instanceof StoreError) && errCode(e) === '') throw this.#failed(new StoreError('store_unavailable', { cause: e, failure: 'timeout' }), 'not_applied');
      throw this.#failed(e, 'not_applied');
    }
  }

  /** A statement runner on `client` whose read timeout is what is left of the deadline. */
  #runner(client: pg.PoolClient): Run {
    return <R extends pg.QueryResultRow>(query: pg.QueryConfig<unknown[]> | string) => {
      const ms = budgetMs();
      const cfg: pg.QueryConfig<unknown[]> & { query_timeout?: number } = typeof query === 'string' ? { text: query } : { ...query };
      if (ms === undefined) return client.query<R>(cfg);
      cfg.query_timeout = ms;
      // pg's read timeout set here is the request's deadline (see deadlineTimerError).
      return client.query<R>(cfg).catch((e: unknown) => {
        throw e instanceof Error && e.message === 'Query read timeout' ? deadlineTimerError(e) : e;
      });
    };
  }

  /** One statement on a pooled connection (one snapshot). `write`: its outcome is unknown once sent. */
  async #query<R extends pg.QueryResultRow>(query: pg.QueryConfig<unknown[]>, write = false): Promise<pg.QueryResult<R>> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      const r = await this.#runner(client)<R>(query);
      this.health.succeeded('read');
      return r;
    } catch (e) {
      if (!isServerAnswer(e)) broken = e instanceof Error ? e : new Error('query failed');
      throw this.#failed(e, write && !isServerAnswer(e) ? 'unknown' : 'not_applied');
    } finally {
      client.release(broken);
    }
  }

  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection. Serialization failures and
   * deadlocks are retried with a fresh transaction; everything else is mapped and thrown.
   * A connection that failed (timed out, broke) is destroyed without a ROLLBACK round trip:
   * the server aborts a transaction whose connection is gone.
   */
  async #tx<T>(fn: (run: Run) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.#connect();
      const run = this.#runner(client);
      let broken: Error | undefined;
      let commitSent = false;
      try {
        await run('BEGIN');
        const result = await fn(run);
        commitSent = true;
        await run('COMMIT');
        this.health.succeeded('write');
        this.anchor.noteWrite();
        return result;
      } catch (e) {
        if (e instanceof StoreError || isServerAnswer(e)) {
          try {
            await client.query('ROLLBACK');
          } catch (e2) {
            broken = e2 instanceof Error ? e2 : new Error('rollback failed');
          }
        } else {
          broken = e instanceof Error ? e : new Error('transaction failed');
        }
        if (isRetryable(e) && attempt < this.#maxRetries && !this.closing) continue;
        // An answer from the server (even to COMMIT) means the transaction did not commit.
        throw this.#failed(e, commitSent && !isServerAnswer(e) ? 'unknown' : 'not_applied');
      } finally {
        client.release(broken);
      }
    }
  }

  // --- system records -------------------------------------------------------------------

  async getSystem(key: string): Promise<Uint8Array | null> {
    const r = await this.#query<{ value: Buffer }>(q('getSystem', [key]));
    const v = r.rows[0]?.value;
    return v ? new Uint8Array(v) : null;
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    const r = await this.#query(q('putSystemIfAbsent', [key, Buffer.from(value)]), true);
    return r.rowCount === 1;
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    await this.#query(q('putSystem', [key, Buffer.from(value)]), true);
  }

  protected settleKeyRecords<Refusal extends string>(root: RootKey, adoption?: KeyAdoption<Refusal>): Promise<KeyRecordsPlan<Refusal>> {
    return this.#tx((run) => pgSettleKeyRecords(run, root, adoption));
  }

  protected updateKeyRecords<T>(keys: string[], plan: (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>): Promise<T> {
    return this.#tx((run) => pgUpdateKeyRecords(run, keys, plan));
  }

  protected scanStale(currentId: number, limit: number): Promise<StaleBlob[]> {
    return this.#tx((run) => pgScanStale(run, currentId, limit));
  }

  protected replaceBlobs(swaps: BlobSwap[]): Promise<number> {
    return this.#tx((run) => pgReplaceBlobs(run, swaps));
  }

  // --- secrets --------------------------------------------------------------------------

  protected async readSecret(id: Buffer, version: number): Promise<ReadRow> {
    const r = await this.#query<ReadRow>(version > 0 ? q('readVersion', [id, version]) : q('readNewest', [id]));
    return r.rows[0] ?? { meta: null, versions: false, version: null, value: null };
  }

  protected async readMeta(id: Buffer): Promise<MetaRow> {
    const r = await this.#query<MetaRow>(q('readMeta', [id]));
    return r.rows[0] ?? { meta: null, versions: false };
  }

  protected writeSecret<T>(id: Buffer, plan: (row: MetaRow, fence: Uint8Array | null) => { result: T; write: SealedSecretWrite | null }): Promise<T> {
    return this.#tx((run) => pgWriteSecret(run, id, plan));
  }

  /**
   * The snapshot first (the mark), then pages in key order, each its own statement. Every row
   * committed before the mark is in a later page's view (rows are never deleted); a row the
   * mark did not see is returned again by the next `readPathsSince(mark)`.
   */
  protected async readAllPaths(visit: (rows: PathRow[]) => Promise<void>): Promise<string> {
    const mark = (await this.#query<{ snap: string }>(q('currentSnapshot'))).rows[0]?.snap;
    if (mark === undefined) throw new StoreError('store_unavailable');
    await visitPathPages(async (after, limit) => (await this.#query<PathRow>(q('listSecretsPage', [after, limit]))).rows, visit);
    return mark;
  }

  /** Other instances' new paths; a snapshot older than the last one (database restored) → rebuild. */
  protected async readPathsSince(mark: string): Promise<{ rows: PathRow[]; mark: string } | null> {
    const r = splitSnapshot((await this.#query<SnapRow>(pathsSinceQuery(mark))).rows);
    return snapshotXmax(r.mark) < snapshotXmax(mark) ? null : r;
  }

  // --- policies -------------------------------------------------------------------------

  protected async readPolicy(id: Buffer): Promise<Buffer | null> {
    return (await this.#query<{ body: Buffer }>(q('getPolicy', [id]))).rows[0]?.body ?? null;
  }

  protected async readPolicies(): Promise<{ id: Buffer; body: Buffer }[]> {
    return (await this.#query<{ id: Buffer; body: Buffer }>(q('listPolicies'))).rows;
  }

  protected writePolicy(id: Buffer, build: (old: Buffer | null, fence: Uint8Array | null) => { record: PolicyRecord; body: Buffer }): Promise<PolicyRecord> {
    return this.#tx((run) => pgWritePolicy(run, id, build));
  }

  protected removePolicy(id: Buffer): Promise<boolean> {
    return this.#tx((run) => pgRemovePolicy(run, id));
  }

  /** The shared policy generation: one primary-key lookup, correct across every instance. */
  async policyGeneration(): Promise<number> {
    const r = await this.#query<{ value: string }>(q('getGeneration'));
    const v = r.rows[0]?.value;
    if (v === undefined) throw new StoreError('store_schema_invalid');
    return Number(v);
  }

  /** Waits for checked-out connections to come back, then closes every connection. */
  protected async shutdown(): Promise<void> {
    this.#lost?.close();
    await this.#pool.end();
  }
}

/** Opens the pool and migrates the schema (advisory-locked). Server down → store_unavailable. */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const store = new PostgresStore(opts);
  try {
    await store.init();
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}
