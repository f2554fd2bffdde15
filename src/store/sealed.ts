/**
 * The core every persistent backend (sqlite, postgres) shares: a `Store` whose records are
 * sealed at rest (codec.ts: HMAC'd ids, AEAD envelopes with AAD binding, D8/D9). It holds
 * the lock state and the one key check (key-check.ts), turns the pure secret rules
 * (model.ts) into sealed writes, and opens, checks and lists what the backend reads.
 *
 * A backend contributes only its transactions and SQL: the abstract primitives below,
 * each documented with the atomicity it must give. It never sees a plaintext or a key.
 *
 * Integrity (STO-05, STO-06): value rows without their metadata row are an integrity
 * error, never "not found"; a policy row that fails its check is left out of listings and
 * logged as an alarm (a tampered policy never widens access).
 *
 * Path listings come from an in-memory index of the decrypted paths (path-catalog.ts),
 * built in the background once the key is in and kept current from this process's writes
 * and the backend's "created since" read; it is dropped on close.
 */
import type { RootKey } from '../crypto/index.js';
import type { Logger } from '../lib/index.js';
import type { RecordSealer } from './codec.js';
import { assertFence, isFenceRefusal } from './seal-fence.js';
import { KeyCustody, type BlobSwap, type KeyRecordsUpdate, type StaleBlob } from './key-custody.js';
import { DEFAULT_SEAL_LIMIT, KEYRING_RECORD } from './keyring.js';
import { StoreHealth } from './health.js';
import { adoptionResult, assertUnlockable, type KeyRecordsPlan } from './key-check.js';
import {
  copyStringMap, DEFAULT_MAX_VERSIONS, planChange, planPut, resolveReadVersion, toMetadata,
  type ChangeKind, type SecretState, type SecretWrite,
} from './model.js';
import { PathCatalog, type PathRow } from './path-catalog.js';
import type { MetaRow, ReadRow, SealedSecretWrite } from './sealed-rows.js';
import { openPolicy, openPolicyRows, sealPolicyWrite } from './sealed-policy.js';
import {
  StoreError, type AdoptionResult, type CommonStoreOptions, type KeyAdoption, type PolicyInput, type PolicyRecord,
  type PutSecretOptions, type SecretMetadata, type SecretPathPage, type SecretPathQuery, type SecretVersionInfo, type Store,
} from './types.js';

/** Re-reads of a secret whose current version moved between two statements. */
const MAX_READ_ATTEMPTS = 16;

export type { MetaRow, ReadRow, SealedSecretWrite } from './sealed-rows.js';

export interface SealedStoreOptions extends CommonStoreOptions {
  logger?: Logger;
  /** Most seals under one storage key before it rotates by itself (SPIKE_NEXUS_AEAD_SEAL_LIMIT; default 2^31). */
  sealLimit?: number;
}

export abstract class SealedStore implements Store {
  abstract readonly kind: 'sqlite' | 'postgres';
  protected readonly defaultMaxVersions: number;
  protected readonly now: () => Date;
  protected readonly logger: Logger | undefined;
  /** Highest version number the backend's schema can hold (larger ones read as absent). */
  protected readonly maxVersion: number;
  /** The current failure cause and its rate-limited log lines (health.ts); backends report to it. */
  readonly health: StoreHealth;
  #custody: KeyCustody | null = null;
  readonly #sealLimit: number;
  readonly #paths: PathCatalog;
  #closing = false;
  #closed: Promise<void> | null = null;

  protected constructor(opts: SealedStoreOptions, maxVersion = Number.MAX_SAFE_INTEGER) {
    this.defaultMaxVersions = opts.defaultMaxVersions ?? DEFAULT_MAX_VERSIONS;
    this.now = opts.now ?? (() => new Date());
    this.logger = opts.logger;
    this.maxVersion = maxVersion;
    this.#sealLimit = opts.sealLimit ?? DEFAULT_SEAL_LIMIT;
    this.health = new StoreHealth(opts.logger);
    this.#paths = new PathCatalog(
      { readAll: (visit) => this.readAllPaths(visit), readSince: (mark) => this.readPathsSince(mark) },
      (row) => this.#sealerOrThrow().openPath(row.id, row.path),
    );
  }

  // --- what a backend provides ---------------------------------------------------------

  abstract getSystem(key: string): Promise<Uint8Array | null>;
  abstract putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean>;
  abstract putSystem(key: string, value: Uint8Array): Promise<void>;
  abstract policyGeneration(): Promise<number>;
  /**
   * ONE transaction, exclusive for the key records: reads them, asks
   * `planKeyRecords(root, …, adoption)` and, when it accepts, inserts what it lists.
   */
  protected abstract settleKeyRecords<Refusal extends string>(root: RootKey, adoption?: KeyAdoption<Refusal>): Promise<KeyRecordsPlan<Refusal>>;
  /** One snapshot (see `ReadRow`); `version` 0 = the newest stored one. */
  /**
   * `known`: the metadata blob the sealer remembers for `id`, if any; a backend may return that
   * same Buffer as the row's `meta` when the stored blob is byte-for-byte equal to it, instead
   * of a fresh copy.
   */
  protected abstract readSecret(id: Buffer, version: number, known?: Buffer): Promise<ReadRow>;
  /** `known`: as for {@link readSecret}. */
  protected abstract readMeta(id: Buffer, known?: Buffer): Promise<MetaRow>;
  /**
   * ONE transaction: reads the metadata row under a write lock, calls `plan` (which may
   * throw: nothing is written) and stores the write it returns, if any. `fence` is the stored
   * seal fence read in it (SEAL_FENCE_RECORD). `known`, asked inside the transaction: as for
   * {@link readSecret}.
   */
  protected abstract writeSecret<T>(id: Buffer, plan: (row: MetaRow, fence: Uint8Array | null) => { result: T; write: SealedSecretWrite | null }, known?: () => Buffer | undefined): Promise<T>;
  /** Every path record, page by page to `visit`, and an opaque mark of the database state read before them (see path-catalog.ts). */
  protected abstract readAllPaths(visit: (rows: PathRow[]) => Promise<void>): Promise<string>;
  /** Path records created (by anyone) since `mark`, and the new mark; null = unknown, read all again. */
  protected abstract readPathsSince(mark: string): Promise<{ rows: PathRow[]; mark: string } | null>;
  protected abstract readPolicy(id: Buffer): Promise<Buffer | null>;
  protected abstract readPolicies(): Promise<{ id: Buffer; body: Buffer }[]>;
  /** ONE transaction: reads the old body, stores `build(old).body`, bumps the policy generation. */
  protected abstract writePolicy(id: Buffer, build: (old: Buffer | null, fence: Uint8Array | null) => { record: PolicyRecord; body: Buffer }): Promise<PolicyRecord>;
  /** ONE transaction: deletes the row; bumps the policy generation only if it existed. */
  protected abstract removePolicy(id: Buffer): Promise<boolean>;
  /** Lets operations in flight finish, then releases the connection(s). */
  protected abstract shutdown(): Promise<void>;
  /** See `CustodyBackend` (key-custody.ts): key-record update, stale-blob scan, blob swap. */
  protected abstract updateKeyRecords<T>(keys: string[], plan: (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>): Promise<T>;
  protected abstract scanStale(currentId: number, limit: number): Promise<StaleBlob[]>;
  protected abstract replaceBlobs(swaps: BlobSwap[]): Promise<number>;

  // --- lock state -------------------------------------------------------------------------

  protected checkOpen(): void {
    if (this.#closing) throw new StoreError('store_closed');
  }

  /** True once `close` was called. */
  protected get closing(): boolean {
    return this.#closing;
  }

  #sealerOrThrow(): RecordSealer {
    return this.custody().sealer;
  }

  /** The unlocked store's key custody (keyring, rotation, re-encryption steps); `store_locked` before. */
  custody(): KeyCustody {
    this.checkOpen();
    if (!this.#custody) throw new StoreError('store_locked');
    return this.#custody;
  }

  /**
   * Runs a sealing write with its seals reserved first (AES-GCM use counters, keyring.ts). A
   * write refused by the seal fence (another process moved the keyring on) is run again after
   * a keyring reload, at most twice; then `store_busy` (nothing was written).
   */
  async #sealing<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const custody = this.custody();
      const release = custody.promiseNow() ?? await custody.promise(); // synchronous when seals are left
      try {
        return await fn();
      } catch (e) {
        if (!isFenceRefusal(e)) throw e;
        if (attempt >= 2) throw new StoreError('store_busy', { outcome: 'not_applied' });
      } finally {
        release();
      }
      await custody.reloadSoon().catch(() => undefined);
    }
  }


  async #install(root: RootKey): Promise<void> {
    this.checkOpen();
    if (this.#custody) throw new StoreError('store_already_unlocked');
    const record = await this.getSystem(KEYRING_RECORD);
    if (this.#custody) throw new StoreError('store_already_unlocked');
    this.#custody = KeyCustody.open({
      updateKeyRecords: (keys, plan) => this.updateKeyRecords(keys, plan),
      scanStale: (id, limit) => this.scanStale(id, limit),
      replaceBlobs: (swaps) => this.replaceBlobs(swaps),
    }, root, record, this.#sealLimit);
    // The first block of seals now, so the first writes do not wait; a failure is retried by them.
    await this.#custody.prime().catch((e: unknown) => {
      this.logger?.warn({ err: (e as { code?: string }).code ?? 'error' }, 'could not reserve AES-GCM seals at unlock; writes retry');
    });
    // Build the path index now, in the background, so the first list does not pay for it.
    this.#paths.refresh().catch((e: unknown) => {
      const code = (e as { code?: string }).code ?? 'error';
      if (code !== 'store_closed') this.logger?.warn({ err: code }, 'path index build failed; the next list retries');
    });
  }

  async unlock(root: RootKey): Promise<void> {
    this.checkOpen();
    if (this.#custody) throw new StoreError('store_already_unlocked');
    assertUnlockable(await this.settleKeyRecords(root));
    await this.#install(root);
  }

  async adoptKey<Refusal extends string>(root: RootKey, adoption: KeyAdoption<Refusal>): Promise<AdoptionResult<Refusal>> {
    this.checkOpen();
    const result = adoptionResult(await this.settleKeyRecords(root, adoption));
    if (result.ok) await this.#install(root);
    return result;
  }

  isUnlocked(): boolean {
    return this.#custody !== null;
  }

  /** Locks again (the root key was rotated elsewhere: src/nexus/rejoin.ts): keys destroyed (a user still holding them fails), path index dropped. */
  lock(): boolean {
    const custody = this.#custody;
    if (!custody) return false;
    this.#custody = null;
    this.#paths.clear();
    custody.destroy();
    return true;
  }

  // --- secrets ----------------------------------------------------------------------------

  /** A shared, read-only state (read-memo.ts); the planners clone before changing anything. */
  #decode(sealer: RecordSealer, id: Buffer, row: MetaRow): Readonly<SecretState> | null {
    if (row.meta !== null) return sealer.openMeta(id, row.meta);
    if (row.versions) throw new StoreError('store_integrity');
    return null;
  }

  #seal<T>(sealer: RecordSealer, id: Buffer, path: string, planned: SecretWrite<T>): { result: T; write: SealedSecretWrite | null } {
    if (planned.state === null) return { result: planned.result, write: null };
    if (planned.added && planned.added.version > this.maxVersion) throw new StoreError('store_invalid_argument');
    return {
      result: planned.result,
      write: {
        created: planned.created,
        path: planned.created ? sealer.sealPath(id, path) : null,
        meta: sealer.sealMeta(id, planned.state),
        added: planned.added ? { version: planned.added.version, blob: sealer.sealValues(id, planned.added.version, planned.added.values) } : null,
        dropped: planned.dropped.filter((v) => v <= this.maxVersion),
      },
    };
  }

  async putSecret(path: string, values: Record<string, string>, opts: PutSecretOptions = {}): Promise<{ version: number }> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(path);
    const o: PutSecretOptions = { ...opts };
    const vals = copyStringMap(values); // the caller may mutate its object before the write runs
    let created = false; // as planned by the last (committed) attempt
    const r = await this.#sealing(() => this.writeSecret(id, (row, fence) => {
      assertFence(fence, sealer.keyring.storage.current);
      const planned = planPut(this.#decode(sealer, id, row), vals, o, this.defaultMaxVersions, this.now());
      created = planned.created;
      return this.#seal(sealer, id, path, planned);
    }, () => sealer.knownMeta(id)));
    if (created) this.#paths.noteCreated(path);
    return r;
  }

  async #change(kind: ChangeKind, path: string, versions: number[]): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(path);
    const list = [...versions];
    return this.#sealing(() => this.writeSecret(id, (row, fence) => {
      assertFence(fence, sealer.keyring.storage.current);
      return this.#seal(sealer, id, path, planChange(kind, this.#decode(sealer, id, row), list, this.now()));
    }, () => sealer.knownMeta(id)));
  }

  async deleteSecret(path: string, versions: number[]): Promise<boolean> {
    return this.#change('delete', path, versions);
  }

  async undeleteSecret(path: string, versions: number[]): Promise<boolean> {
    return this.#change('undelete', path, versions);
  }

  async destroySecret(path: string, versions: number[]): Promise<boolean> {
    return this.#change('destroy', path, versions);
  }

  /**
   * Both records are opened (and so authenticated) on every read; the value's AAD names its
   * version, so a row of another version could not pass for this one. When the current
   * version is not the newest stored one (the newest was deleted), or it changed between
   * two statements, the read is repeated by number (bounded).
   */
  async getSecret(path: string, version?: number): Promise<{ version: number; values: Record<string, string> } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(path);
    if (version !== undefined && (!Number.isSafeInteger(version) || version < 0 || version > this.maxVersion)) return null;
    let row = await this.readSecret(id, version ?? 0, sealer.knownMeta(id));
    for (let attempt = 0; attempt < MAX_READ_ATTEMPTS; attempt++) {
      const v = resolveReadVersion(this.#decode(sealer, id, row), version);
      if (v === null) return null;
      if (row.version === v) {
        if (!row.value) throw new StoreError('store_integrity'); // metadata names a version whose row is gone (STO-05)
        return { version: v, values: sealer.openValues(id, v, row.value) };
      }
      row = await this.readSecret(id, v, sealer.knownMeta(id));
    }
    throw new StoreError('store_busy');
  }

  async getSecretMetadata(path: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.secretId(path);
    const state = this.#decode(sealer, id, await this.readMeta(id, sealer.knownMeta(id)));
    return state ? toMetadata(state) : null;
  }

  async listSecretPaths(): Promise<string[]> {
    return (await this.listSecretPathPage({})).paths;
  }

  async listSecretPathPage(q: SecretPathQuery): Promise<SecretPathPage> {
    this.#sealerOrThrow();
    await this.#paths.refresh();
    return this.#paths.index.scan(q);
  }

  // --- policies ---------------------------------------------------------------------------

  async putPolicy(p: PolicyInput): Promise<PolicyRecord> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(p.name);
    const input: PolicyInput = { name: p.name, spiffeIdPattern: p.spiffeIdPattern, pathPattern: p.pathPattern, permissions: [...p.permissions] };
    return this.#sealing(() => this.writePolicy(id, (old, fence) => {
      assertFence(fence, sealer.keyring.storage.current);
      return sealPolicyWrite(sealer, id, input, old, this.now(), this.logger);
    }));
  }

  async getPolicy(name: string): Promise<PolicyRecord | null> {
    const sealer = this.#sealerOrThrow();
    const id = sealer.policyId(name);
    const blob = await this.readPolicy(id);
    return blob ? openPolicy(sealer, id, name, blob) : null;
  }

  async deletePolicy(name: string): Promise<boolean> {
    const sealer = this.#sealerOrThrow();
    return this.removePolicy(sealer.policyId(name));
  }

  /** Every readable policy, sorted by name; rows failing their check are left out and logged. */
  async listPolicies(): Promise<PolicyRecord[]> {
    const sealer = this.#sealerOrThrow();
    return openPolicyRows(sealer, await this.readPolicies(), this.logger);
  }

  // --- lifecycle --------------------------------------------------------------------------

  /** Stops accepting calls, lets operations in flight finish, closes the backend, wipes the keys. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#paths.clear();
      try {
        await this.shutdown();
      } finally {
        this.#custody?.destroy();
        this.#custody = null;
      }
    })();
    return this.#closed;
  }
}
