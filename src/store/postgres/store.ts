/**
 * `postgres` backend: several Nexus instances share one PostgreSQL database (issue 8).
 *
 * Driver: `pg` (node-postgres) rather than `postgres` (porsager): it is the long-standing,
 * most widely deployed client with a separately maintained pool (`pg-pool`), explicit
 * control over checkout/release (a read-modify-write needs ONE connection for its whole
 * transaction), LISTEN/NOTIFY on a plain `Client`, bytea ↔ Buffer without copies through
 * strings, and TypeScript types (@types/pg). It is also the one dependencies.md lists.
 *
 * At rest (D8/D9): exactly the blobs the sqlite backend writes — `RecordSealer` (codec.ts)
 * seals paths, metadata (versions, timestamps, deletion marks, custom metadata), values
 * and policy bodies with AAD binding; rows are found by HMAC'd ids. Secret semantics come
 * from secrets-model.ts; this file only persists the states it computes.
 *
 * Across instances (D13): every secret write is one transaction that first locks the
 * secret's metadata row (`SELECT … FOR UPDATE`); a new path is created with
 * `INSERT … ON CONFLICT DO NOTHING`, and losing that race re-reads under the lock. So two
 * instances can never hand out the same version, and `cas` is checked against the locked
 * row (mismatch → `store_cas_mismatch`). Policy writes lock the one-row generation counter
 * first (one global order: no deadlocks), bump it in the same transaction and
 * `pg_notify('spike_policy_changed', <generation>)`, which the server delivers at commit.
 * `policyGeneration()` reads that row (one index lookup — cheap enough per request);
 * `onPolicyChange(cb)` is the push variant (LISTEN on a dedicated connection).
 * `putSystemIfAbsent` is `INSERT … ON CONFLICT DO NOTHING`: exactly one instance wins.
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
import pg from 'pg';
import type { Logger } from '../../lib/log.js';
import type { RootKey } from '../../crypto/index.js';
import { RecordSealer } from '../codec.js';
import { compareCodeUnits } from '../memory.js';
import { migratePostgres } from './schema.js';
import {
  applyDelete, applyDestroy, applyPut, applyUndelete, copyStringMap, DEFAULT_MAX_VERSIONS, resolveReadVersion,
  toMetadata, type ChangeResult, type SecretState,
} from '../model.js';
import { STORE_CHECK_KEY } from '../sqlite/store.js';
import {
  StoreError, type CommonStoreOptions, type PolicyInput, type PolicyRecord, type PutSecretOptions,
  type SecretMetadata, type SecretVersionInfo, type Store,
} from '../types.js';

export interface PostgresStoreOptions extends CommonStoreOptions {
  /** libpq-style URL, e.g. `postgresql://spike@db.internal:5432/spike` (SPIKE_NEXUS_DATABASE_URL). */
  connectionString: string;
  /** Pool size (SPIKE_NEXUS_DB_MAX_OPEN_CONNS, default 10). */
  maxConnections?: number;
  /** Per-operation deadline: server `statement_timeout` and client read timeout (SPIKE_NEXUS_DB_OPERATION_TIMEOUT, default 15 s). */
  operationTimeoutMs?: number;
  /** Connection attempt deadline (default 5 s). */
  connectTimeoutMs?: number;
  /** Connections are recycled after this long (SPIKE_NEXUS_DB_CONN_MAX_LIFETIME, default 1 h; 0 = never). */
  connMaxLifetimeMs?: number;
  /** Idle connections are closed after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** Retries of a transaction after a serialization failure or deadlock (default 5). */
  maxRetries?: number;
  /** Listener reconnect backoff: first and largest delay in ms (defaults 100 and 5000). */
  listenRetryMs?: { min: number; max: number };
  logger?: Logger;
}

const DEFAULTS = {
  maxConnections: 10,
  operationTimeoutMs: 15_000,
  connectTimeoutMs: 5_000,
  connMaxLifetimeMs: 3_600_000,
  idleTimeoutMs: 30_000,
  maxRetries: 5,
  listenRetryMs: { min: 100, max: 5_000 },
} as const;

/** NOTIFY channel; the payload is the new policy generation in decimal. */
export const POLICY_CHANNEL = 'spike_policy_changed';

const MAX_PG_INT = 2 ** 31 - 1;
const YIELD_EVERY = 500;
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

function errCode(e: unknown): string {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : '';
}

function isRetryable(e: unknown): boolean {
  const c = errCode(e);
  return c === '40001' || c === '40P01';
}

/**
 * Maps driver/server/crypto errors onto StoreError codes; StoreErrors pass through.
 * Never copies the driver's message (it may quote row contents) — only the code.
 */
export function pgToStoreError(e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = errCode(e);
  if (code === 'crypto_decrypt_failed') return new StoreError('store_integrity', { cause: e });
  if (code === '40001' || code === '40P01' || code === '55P03') return new StoreError('store_busy', { cause: e });
  // Connection refused/reset, 08xxx connection exceptions, 57P0x shutdown, 57014 timeout,
  // 53xxx resources, "Connection terminated", client read timeout, pool ended: unavailable.
  return new StoreError('store_unavailable', { cause: e });
}

type Q = pg.QueryConfig<unknown[]>;

/** Named (per-connection prepared) statements for the hot paths. */
const SQL = {
  getSystem: 'SELECT value FROM spike_system WHERE key = $1',
  putSystemIfAbsent: 'INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',
  putSystem: 'INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
  lockMeta: 'SELECT meta FROM spike_secrets WHERE id = $1 FOR UPDATE',
  probe: `SELECT EXISTS (SELECT 1 FROM spike_secrets WHERE id = $1) AS present,
                 EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  /** New path: the secret row and its first value in one statement; no row if someone else created it. */
  insertSecret: `WITH s AS (
                   INSERT INTO spike_secrets (id, path, meta) VALUES ($1, $2, $3)
                   ON CONFLICT (id) DO NOTHING RETURNING id)
                 INSERT INTO spike_secret_versions (id, version, value)
                 SELECT id, $4, $5 FROM s
                 ON CONFLICT (id, version) DO UPDATE SET value = EXCLUDED.value`,
  /** Existing path: new metadata, new version, pruned versions gone — one statement. */
  putVersion: `WITH m AS (UPDATE spike_secrets SET meta = $2 WHERE id = $1),
                    d AS (DELETE FROM spike_secret_versions WHERE id = $1 AND version = ANY ($3::int[]))
               INSERT INTO spike_secret_versions (id, version, value) VALUES ($1, $4, $5)
               ON CONFLICT (id, version) DO UPDATE SET value = EXCLUDED.value`,
  updateMeta: 'UPDATE spike_secrets SET meta = $2 WHERE id = $1',
  updateMetaDropVersions: `WITH d AS (DELETE FROM spike_secret_versions WHERE id = $1 AND version = ANY ($3::int[]))
                           UPDATE spike_secrets SET meta = $2 WHERE id = $1`,
  /** Read of one version: metadata, that version's value and the orphan probe share one snapshot. */
  readVersion: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta,
                       (SELECT value FROM spike_secret_versions WHERE id = $1 AND version = $2) AS value,
                       $2::int AS version,
                       EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  /** Read of the current version, guessing it is the newest stored one (true unless the newest was deleted). */
  readNewest: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta, t.value, t.version,
                      t.version IS NOT NULL AS versions
                 FROM (SELECT 1) AS one
                 LEFT JOIN LATERAL (SELECT version, value FROM spike_secret_versions WHERE id = $1
                                     ORDER BY version DESC LIMIT 1) AS t ON true`,
  readMeta: `SELECT (SELECT meta FROM spike_secrets WHERE id = $1) AS meta,
                    EXISTS (SELECT 1 FROM spike_secret_versions WHERE id = $1) AS versions`,
  listSecrets: 'SELECT id, path FROM spike_secrets',
  lockGeneration: `SELECT value FROM spike_counters WHERE name = 'policy_generation' FOR UPDATE`,
  bumpGeneration: `WITH g AS (UPDATE spike_counters SET value = value + 1 WHERE name = 'policy_generation' RETURNING value)
                   SELECT value::text AS value, pg_notify('${POLICY_CHANNEL}', value::text) FROM g`,
  getGeneration: `SELECT value::text AS value FROM spike_counters WHERE name = 'policy_generation'`,
  getPolicy: 'SELECT body FROM spike_policies WHERE id = $1',
  putPolicy: 'INSERT INTO spike_policies (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body',
  deletePolicy: 'DELETE FROM spike_policies WHERE id = $1',
  listPolicies: 'SELECT id, body FROM spike_policies',
} as const;

type SqlName = keyof typeof SQL;

function q(name: SqlName, values: unknown[] = []): Q {
  return { name: `spike_${name}`, text: SQL[name], values };
}

interface ReadRow {
  meta: Buffer | null;
  value: Buffer | null;
  version: number | null;
  versions: boolean;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #opts: {
    connectionString: string;
    maxRetries: number;
    defaultMaxVersions: number;
    now: () => Date;
    listenRetryMs: { min: number; max: number };
    connectTimeoutMs: number;
    logger?: Logger;
  };
  #sealer: RecordSealer | null = null;
  #closed = false;
  #listener: PolicyListener | null = null;

  /** Use `openPostgresStore` (or `openStore`): it also migrates the schema. */
  constructor(opts: PostgresStoreOptions) {
    if (typeof opts.connectionString !== 'string' || opts.connectionString.length === 0) {
      throw new StoreError('store_invalid_argument');
    }
    const operationTimeoutMs = opts.operationTimeoutMs ?? DEFAULTS.operationTimeoutMs;
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.#opts = {
      connectionString: opts.connectionString,
      maxRetries: opts.maxRetries ?? DEFAULTS.maxRetries,
      defaultMaxVersions: opts.defaultMaxVersions ?? DEFAULT_MAX_VERSIONS,
      now: opts.now ?? (() => new Date()),
      listenRetryMs: opts.listenRetryMs ?? DEFAULTS.listenRetryMs,
      connectTimeoutMs,
      ...(opts.logger ? { logger: opts.logger } : {}),
    };
    const cfg: pg.PoolConfig = {
      connectionString: opts.connectionString,
      max: Math.max(1, opts.maxConnections ?? DEFAULTS.maxConnections),
      idleTimeoutMillis: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      connectionTimeoutMillis: connectTimeoutMs,
      maxLifetimeSeconds: Math.ceil((opts.connMaxLifetimeMs ?? DEFAULTS.connMaxLifetimeMs) / 1000),
      keepAlive: true,
      application_name: 'spike-nexus',
    };
    if (operationTimeoutMs > 0) {
      cfg.statement_timeout = operationTimeoutMs;
      cfg.query_timeout = operationTimeoutMs + 1000;
      cfg.idle_in_transaction_session_timeout = operationTimeoutMs * 2;
    }
    this.#pool = new pg.Pool(cfg);
    // Without these listeners a server restart (idle clients losing their socket) or a
    // connection dropping under a checked-out client would crash the process.
    this.#pool.on('error', (err) => this.#onConnectionError(err));
    this.#pool.on('connect', (client) => {
      client.on('error', (err) => this.#onConnectionError(err));
    });
  }

  #onConnectionError(err: unknown): void {
    this.#opts.logger?.warn({ err: 'store_unavailable', code: errCode(err) }, 'postgres connection lost; it will be replaced on next use');
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

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('store_closed');
  }

  #sealerOrThrow(): RecordSealer {
    this.#checkOpen();
    if (!this.#sealer) throw new StoreError('store_locked');
    return this.#sealer;
  }

  async #connect(): Promise<pg.PoolClient> {
    this.#checkOpen();
    try {
      return await this.#pool.connect();
    } catch (e) {
      throw pgToStoreError(e);
    }
  }

  /** One statement on any pooled connection (one snapshot). */
  async #query<R extends pg.QueryResultRow>(query: Q): Promise<pg.QueryResult<R>> {
    this.#checkOpen();
    try {
      return await this.#pool.query<R>(query);
    } catch (e) {
      throw pgToStoreError(e);
    }
  }

  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection. Serialization failures and
   * deadlocks are retried with a fresh transaction; everything else is mapped and thrown.
   * A connection that failed (or could not roll back) is destroyed, not reused.
   */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.#connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (e) {
        try {
          await client.query('ROLLBACK');
        } catch (e2) {
          broken = e2 instanceof Error ? e2 : new Error('rollback failed');
        }
        if (isRetryable(e) && attempt < this.#opts.maxRetries && !this.#closed) continue;
        throw pgToStoreError(e);
      } finally {
        client.release(broken);
      }
    }
  }

  /**
   * The locked, decoded state of a secret inside a transaction, or null when the path
   * is unknown. Version rows without a metadata row: integrity error (catalogue STO-05).
   */
  async #lockState(c: pg.PoolClient, sealer: RecordSealer, id: Buffer): Promise<SecretState | null> {
    for (;;) {
      const r = await c.query<{ meta: Buffer }>(q('lockMeta', [id]));
      const row = r.rows[0];
      if (row) return sealer.openMeta(id, row.meta);
      // One statement: did someone create it since, or are there orphaned versions?
      const p = await c.query<{ present: boolean; versions: boolean }>(q('probe', [id]));
      const probe = p.rows[0];
      if (probe?.present) continue; // created concurrently and committed: lock it now
      if (probe?.versions) throw new StoreError('store_integrity');
      return null;
    }
  }

  /** Decodes a one-statement read; orphaned versions without metadata → integrity error. */
  #decodeRead(sealer: RecordSealer, id: Buffer, row: ReadRow | undefined): SecretState | null {
    if (!row || row.meta === null) {
      if (row?.versions) throw new StoreError('store_integrity');
      return null;
    }
    return sealer.openMeta(id, row.meta);
  }

  // --- system records -------------------------------------------------------------------

  async getSystem(key: string): Promise<Uint8Array | null> {
    const r = await this.#query<{ value: Buffer }>(q('getSystem', [key]));
    const v = r.rows[0]?.value;
    return v ? new Uint8Array(v) : null;
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    const r = await this.#query(q('putSystemIfAbsent', [key, Buffer.from(value)]));
    return r.rowCount === 1;
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    await this.#query(q('putSystem', [key, Buffer.from(value)]));
  }

  // --- key ----------------------------------------------------------------------------

  /**
   * Installs the keys after checking the store's own key-check record (written by the
   * first instance to unlock, atomically: the others read the winner's record). A root
   * key that cannot open it → `store_wrong_key`.
   */
  async unlock(root: RootKey): Promise<void> {
    this.#checkOpen();
    if (this.#sealer) throw new StoreError('store_already_unlocked');
    const sealer = new RecordSealer(root);
    try {
      let rec = await this.getSystem(STORE_CHECK_KEY);
      if (!rec) {
        await this.putSystemIfAbsent(STORE_CHECK_KEY, sealer.makeStoreCheck());
        rec = await this.getSystem(STORE_CHECK_KEY);
      }
      if (!rec || !sealer.checkStoreCheck(rec)) throw new StoreError('store_wrong_key');
    } catch (e) {
      sealer.destroy();
      throw e;
    }
    if (this.#sealer || this.#closed) {
      sealer.destroy();
      throw new StoreError(this.#closed ? 'store_closed' : 'store_already_unlocked');
    }
    this.#sealer = sealer;
  }

  isUnlocked(): boolean {
    return this.#sealer !== null;
  }

  // --- secrets --------------------------------------------------------------------------

  async putSecret(p: string, values: Record<string, string>, opts: PutSecretOptions = {}): Promise<{ version: number }> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const o: PutSecretOptions = { ...opts };
    const vals = copyStringMap(values);
    return this.#tx(async (c) => {
      for (;;) {
        const before = await this.#lockState(c, sealer, id);
        const r = applyPut(before, o, this.#opts.defaultMaxVersions, this.#opts.now());
        if (r.version > MAX_PG_INT) throw new StoreError('store_invalid_argument');
        const meta = sealer.sealMeta(id, r.state);
        const value = sealer.sealValues(id, r.version, vals);
        if (before) {
          await c.query(q('putVersion', [id, meta, r.pruned, r.version, value]));
          return { version: r.version };
        }
        const ins = await c.query(q('insertSecret', [id, sealer.sealPath(id, p), meta, r.version, value]));
        if (ins.rowCount === 1) return { version: r.version };
        // Another instance created the path after our probe: lock its row and start over.
      }
    });
  }

  async getSecret(p: string, version?: number): Promise<{ version: number; values: Record<string, string> } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) return null;
    if (version !== undefined && version > MAX_PG_INT) return null;
    let row = version !== undefined && version > 0
      ? (await this.#query<ReadRow>(q('readVersion', [id, version]))).rows[0]
      : (await this.#query<ReadRow>(q('readNewest', [id]))).rows[0];
    // A bounded loop: when the current version is not the newest stored one (the newest
    // was deleted), or it changed between two statements, read again by number.
    for (let i = 0; i < 16; i++) {
      const state = this.#decodeRead(sealer, id, row);
      const v = resolveReadVersion(state, version);
      if (v === null) return null;
      if (row && row.version === v) {
        if (!row.value) throw new StoreError('store_integrity'); // metadata names a version whose row is gone (STO-05)
        return { version: v, values: sealer.openValues(id, v, row.value) };
      }
      row = (await this.#query<ReadRow>(q('readVersion', [id, v]))).rows[0];
    }
    throw new StoreError('store_busy');
  }

  async #change(
    p: string,
    versions: number[],
    apply: (s: SecretState, list: readonly number[], now: Date) => ChangeResult,
    opts: { dropChanged: boolean; falseWhenUnchanged: boolean },
  ): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const list = [...versions];
    return this.#tx(async (c) => {
      const before = await this.#lockState(c, sealer, id);
      if (!before) return false;
      const r = apply(before, list, this.#opts.now());
      if (r.changed.length === 0) return !opts.falseWhenUnchanged;
      const meta = sealer.sealMeta(id, r.state);
      if (opts.dropChanged) await c.query(q('updateMetaDropVersions', [id, meta, r.changed.filter((v) => v <= MAX_PG_INT)]));
      else await c.query(q('updateMeta', [id, meta]));
      return true;
    });
  }

  async deleteSecret(p: string, versions: number[]): Promise<boolean> {
    return this.#change(p, versions, applyDelete, { dropChanged: false, falseWhenUnchanged: false });
  }

  async undeleteSecret(p: string, versions: number[]): Promise<boolean> {
    return this.#change(p, versions, applyUndelete, { dropChanged: false, falseWhenUnchanged: true });
  }

  async destroySecret(p: string, versions: number[]): Promise<boolean> {
    return this.#change(p, versions, applyDestroy, { dropChanged: true, falseWhenUnchanged: false });
  }

  async getSecretMetadata(p: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(p);
    const r = await this.#query<ReadRow>(q('readMeta', [id]));
    const s = this.#decodeRead(sealer, id, r.rows[0]);
    return s ? toMetadata(s) : null;
  }

  async listSecretPaths(): Promise<string[]> {
    const sealer = this.#sealerOrThrow();
    const r = await this.#query<{ id: Buffer; path: Buffer }>(q('listSecrets'));
    const out: string[] = [];
    for (let i = 0; i < r.rows.length; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
      const row = r.rows[i]!;
      out.push(sealer.openPath(row.id, row.path));
    }
    return out.sort(compareCodeUnits);
  }

  // --- policies -------------------------------------------------------------------------

  async putPolicy(p: PolicyInput): Promise<PolicyRecord> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(p.name);
    const input: PolicyInput = { name: p.name, spiffeIdPattern: p.spiffeIdPattern, pathPattern: p.pathPattern, permissions: [...p.permissions] };
    return this.#tx(async (c) => {
      await c.query(q('lockGeneration')); // every policy writer takes this row first: one order, no deadlocks
      const now = this.#opts.now();
      const old = (await c.query<{ body: Buffer }>(q('getPolicy', [id]))).rows[0];
      let createdAt = now;
      if (old) {
        // An unreadable old row is overwritten rather than blocking the upsert (as sqlite).
        try {
          const rec = sealer.openPolicyBody(id, old.body);
          if (rec.name === input.name) createdAt = rec.createdAt;
        } catch {
          this.#opts.logger?.error({ err: 'store_integrity' }, 'policy row failed its integrity check; replacing it');
        }
      }
      const rec: PolicyRecord = { ...input, createdAt, updatedAt: now };
      await c.query(q('putPolicy', [id, sealer.sealPolicyBody(id, rec)]));
      await c.query(q('bumpGeneration'));
      return rec;
    });
  }

  async getPolicy(name: string): Promise<PolicyRecord | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(name);
    const r = await this.#query<{ body: Buffer }>(q('getPolicy', [id]));
    const blob = r.rows[0]?.body;
    if (!blob) return null;
    const rec = sealer.openPolicyBody(id, blob);
    if (rec.name !== name) throw new StoreError('store_integrity');
    return rec;
  }

  async deletePolicy(name: string): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(name);
    return this.#tx(async (c) => {
      await c.query(q('lockGeneration'));
      const gone = (await c.query(q('deletePolicy', [id]))).rowCount === 1;
      if (gone) await c.query(q('bumpGeneration'));
      return gone;
    });
  }

  /**
   * Every readable policy, sorted by name. A row that fails its integrity check is left
   * out and logged as an alarm (catalogue STO-06: a tampered policy never widens access).
   */
  async listPolicies(): Promise<PolicyRecord[]> {
    const sealer = this.#sealerOrThrow();
    const r = await this.#query<{ id: Buffer; body: Buffer }>(q('listPolicies'));
    const out: PolicyRecord[] = [];
    let bad = 0;
    for (let i = 0; i < r.rows.length; i++) {
      if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
      const row = r.rows[i]!;
      try {
        const rec = sealer.openPolicyBody(row.id, row.body);
        if (!sealer.policyId(rec.name).equals(row.id)) throw new StoreError('store_integrity');
        out.push(rec);
      } catch {
        bad++;
      }
    }
    if (bad > 0) this.#opts.logger?.error({ err: 'store_integrity', count: bad }, 'ignored policy rows that failed their integrity check');
    return out.sort((a, b) => compareCodeUnits(a.name, b.name));
  }

  /** The shared policy generation: one primary-key lookup, correct across every instance. */
  async policyGeneration(): Promise<number> {
    const r = await this.#query<{ value: string }>(q('getGeneration'));
    const v = r.rows[0]?.value;
    if (v === undefined) throw new StoreError('store_schema_invalid');
    return Number(v);
  }

  /**
   * Push notification of policy changes made by ANY instance (LISTEN/NOTIFY on one
   * dedicated connection, opened on the first subscription). `cb(generation)` is called
   * with each new generation after its transaction committed, and additionally with the
   * current generation every time the listener (re)connects — changes made while it was
   * disconnected are never missed, only coalesced. Returns an unsubscribe function.
   * Delivery is asynchronous: a caller that must see a change made elsewhere on its very
   * next request compares `policyGeneration()` instead (or as well).
   */
  onPolicyChange(cb: (generation: number) => void): () => void {
    this.#checkOpen();
    if (!this.#listener) {
      this.#listener = new PolicyListener(this.#opts.connectionString, this.#opts.connectTimeoutMs, this.#opts.listenRetryMs, this.#opts.logger);
    }
    return this.#listener.add(cb);
  }

  // --- lifecycle ----------------------------------------------------------------------

  /** Stops accepting calls, waits for operations in flight, closes every connection, wipes the keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.stop();
    this.#listener = null;
    try {
      await this.#pool.end();
    } finally {
      this.#sealer?.destroy();
      this.#sealer = null;
    }
  }
}

/** The LISTEN connection of one store, reconnecting with backoff until stopped. */
class PolicyListener {
  readonly #subs = new Set<(generation: number) => void>();
  #client: pg.Client | null = null;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #delay: number;

  constructor(
    private readonly connectionString: string,
    private readonly connectTimeoutMs: number,
    private readonly retry: { min: number; max: number },
    private readonly logger: Logger | undefined,
  ) {
    this.#delay = retry.min;
    void this.#connect();
  }

  add(cb: (generation: number) => void): () => void {
    this.#subs.add(cb);
    return () => {
      this.#subs.delete(cb);
    };
  }

  #emit(generation: number): void {
    for (const cb of [...this.#subs]) {
      try {
        cb(generation);
      } catch {
        this.logger?.error({ err: 'listener_failed' }, 'a policy change subscriber threw');
      }
    }
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: this.connectTimeoutMs,
      keepAlive: true,
      application_name: 'spike-nexus-listen',
    });
    this.#client = client;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      if (this.#client === client) this.#client = null;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (!this.#stopped) {
        this.logger?.warn({ err: 'store_unavailable', code: errCode(err) }, 'policy change listener lost its connection; reconnecting');
        this.#schedule();
      }
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel !== POLICY_CHANNEL) return;
      const g = Number(msg.payload);
      if (Number.isSafeInteger(g)) this.#emit(g);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${POLICY_CHANNEL}`);
      const r = await client.query<{ value: string }>(SQL.getGeneration);
      if (this.#stopped) {
        client.end().catch(() => undefined);
        return;
      }
      this.#delay = this.retry.min;
      const v = r.rows[0]?.value;
      if (v !== undefined) this.#emit(Number(v));
    } catch (e) {
      fail(e);
    }
  }

  #schedule(): void {
    if (this.#timer || this.#stopped) return;
    const d = this.#delay;
    this.#delay = Math.min(this.retry.max, this.#delay * 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#connect();
    }, d);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#subs.clear();
    const c = this.#client;
    this.#client = null;
    if (c) {
      c.removeAllListeners('end');
      c.end().catch(() => undefined);
    }
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
