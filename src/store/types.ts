/**
 * The storage interface every backend implements (memory, lite, sqlite, postgres), plus
 * its typed error.
 *
 * Semantics of secrets live once, in `model.ts`; backends only persist the state those
 * pure functions compute. Every method is async so a networked backend (postgres) fits the
 * same shape; transaction semantics are "each write method is one atomic
 * read-modify-write" (SQLite: inside `BEGIN IMMEDIATE`; Postgres: `SELECT … FOR UPDATE`).
 */
import { SpikeError } from '../lib/index.js';
import type { RootKey } from '../crypto/index.js';
import type { CommitAnchor } from './anchor.js';

export type BackendKind = 'memory' | 'lite' | 'sqlite' | 'postgres';

export interface SecretVersionInfo {
  version: number;
  createdTime: Date;
  deletedTime: Date | null;
}

export interface SecretMetadata {
  /** Highest live (not deleted) version; 0 when every version is deleted or destroyed. */
  currentVersion: number;
  /** Lowest live version; 0 when none is live. */
  oldestVersion: number;
  /**
   * Highest version number ever written to this path (never decreases, never reused).
   * `cas` on put compares against this value (Vault's "current_version").
   */
  lastVersion: number;
  createdTime: Date;
  updatedTime: Date;
  maxVersions: number;
  customMetadata?: Record<string, string>;
}

export interface PutSecretOptions {
  /**
   * Check-and-set: the write happens only if `cas` equals the path's `lastVersion`
   * (0 = the path must not exist yet). Mismatch → StoreError('store_cas_mismatch').
   */
  cas?: number;
  /** Per-secret maximum number of kept versions (integer ≥ 1); persisted with the secret. */
  maxVersions?: number;
  /**
   * The operator's ceiling (SPIKE_NEXUS_MAX_SECRET_VERSIONS; integer ≥ 1): the kept
   * maxVersions, requested or stored, is clamped to it on every put. Absent: no ceiling.
   */
  maxVersionsCeiling?: number;
  /** Replaces the secret's custom metadata (kept unchanged when absent). */
  customMetadata?: Record<string, string>;
}

/** What `Store.listSecretPathPage` lists. */
export interface SecretPathQuery {
  /** Only paths that start with this string (plain code-unit prefix; '' or absent = all). */
  prefix?: string;
  /** Only paths sorting strictly after this one (normally the last path of the previous page). */
  after?: string;
  /** At most this many paths (absent = all). */
  limit?: number;
  /**
   * Keeps only the paths it accepts (authorisation); `limit` counts accepted paths. Synchronous,
   * must not throw. `undefined`: not decided yet; the slice ends there and the same path is
   * asked again at the scan's next turn (a costly decision split over turns), and must be
   * decided then.
   */
  accept?: (path: string) => boolean | undefined;
  /** Asked after each path read: true ends the scan there (the page is then incomplete: the caller discards it). */
  stop?: () => boolean;
  /**
   * Asked before each path: false when its decision does not fit in what this turn of the event
   * loop has left. Then the slice ends before that path, or, at a slice's first path, the scan
   * waits for `turnOfItsOwn` (when given) and decides it then.
   */
  mayDecide?: (path: string) => boolean;
  /** A turn in which any one decision fits (with `mayDecide`). */
  turnOfItsOwn?: () => Promise<void>;
  /** Who asks (the caller's SPIFFE ID): with an `accept`, slices take turns fairly by owner (lib/yield.ts `sliceTurn`). */
  owner?: string;
}

/** A page of paths; `more`: accepted paths follow the last one returned. */
export interface SecretPathPage {
  paths: string[];
  more: boolean;
}

export interface PolicyRecord {
  name: string;
  spiffeIdPattern: string;
  pathPattern: string;
  permissions: string[];
  createdAt: Date;
  updatedAt: Date;
}

export type PolicyInput = Omit<PolicyRecord, 'createdAt' | 'updatedAt'>;

/**
 * The public record `Store.adoptKey` keeps beside the key-check record, and how it
 * recognises one stored earlier (Nexus: the sharing record and its commitments).
 */
export interface KeyAdoption<Refusal extends string> {
  /** System record key (Nexus: `sharing`). */
  recordKey: string;
  /** Its bytes, written when the store holds none yet. */
  record: Uint8Array;
  /** `null` when `stored` belongs to the key being adopted, else why not. Must not throw. */
  judge(stored: Uint8Array): Refusal | null;
  /**
   * Asked (in the same transaction) when no record is stored, before `record` is written:
   * `null` to write it, else why not. `initialized`: the store already had a key check (so
   * this is not a first start: the record went missing). Absent: always written.
   */
  absent?(initialized: boolean): Refusal | null;
}

/**
 * `ok`: the key is adopted and the store unlocked; `record` is the stored record (the
 * caller's own when this call wrote it). Otherwise nothing was written and the store
 * stays locked: `key_check_failed` = the root key does not open the key-check record.
 */
export type AdoptionResult<Refusal extends string> =
  | { ok: true; record: Uint8Array }
  | { ok: false; refusal: Refusal | 'key_check_failed' };

export interface Store {
  readonly kind: BackendKind;

  // System records: public bytes usable before the root key is known (Feldman commitments,
  // sharing parameters, the key-check record — itself an AEAD envelope).
  getSystem(key: string): Promise<Uint8Array | null>;
  /** Writes only if the key is absent; false if it existed (bootstrap-once across instances). */
  putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean>;
  putSystem(key: string, value: Uint8Array): Promise<void>;

  /**
   * Derives the storage and path keys; before this, secret/policy operations throw
   * `store_locked`. Persistent stores check `root` against the key-check record (written
   * on the first unlock): another key → `store_wrong_key`, never "not found" everywhere.
   */
  unlock(root: RootKey): Promise<void>;
  /**
   * Adopts a rebuilt root key in ONE transaction: on a first start writes the key-check
   * record and `adoption.record` (each only if absent); otherwise checks `root` against
   * the stored key-check record and lets `adoption.judge` check the stored record; then
   * unlocks as `unlock` does. Several instances sharing one database agree on one key.
   */
  adoptKey<Refusal extends string>(root: RootKey, adoption: KeyAdoption<Refusal>): Promise<AdoptionResult<Refusal>>;
  isUnlocked(): boolean;

  // Secrets (SPIKE semantics + Vault extras, see model.ts). `null`/false = not found.
  putSecret(path: string, values: Record<string, string>, opts?: PutSecretOptions): Promise<{ version: number }>;
  getSecret(path: string, version?: number): Promise<{ version: number; values: Record<string, string> } | null>;
  /** Soft delete; false only when the path is unknown. */
  deleteSecret(path: string, versions: number[]): Promise<boolean>;
  /** True when at least one version went from deleted to live; false if unknown path or nothing undeleted. */
  undeleteSecret(path: string, versions: number[]): Promise<boolean>;
  /** Permanently wipes those versions; false only when the path is unknown. */
  destroySecret(path: string, versions: number[]): Promise<boolean>;
  getSecretMetadata(path: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null>;
  /** Every stored path, sorted (code-unit order); callers filter by policy. */
  listSecretPaths(): Promise<string[]>;
  /**
   * One page of stored paths from the in-memory path index (path-index.ts), sorted, with
   * work proportional to the prefix range read. Includes every path whose write was
   * acknowledged (by any instance sharing the database) before this call began.
   */
  listSecretPathPage(q: SecretPathQuery): Promise<SecretPathPage>;

  // Policies
  /** Upsert; `createdAt` is kept on update. */
  putPolicy(p: PolicyInput): Promise<PolicyRecord>;
  getPolicy(name: string): Promise<PolicyRecord | null>;
  deletePolicy(name: string): Promise<boolean>;
  /** Sorted by name. */
  listPolicies(): Promise<PolicyRecord[]>;
  /** Bumps on every policy change; cheap to read (one row), safe across processes. */
  policyGeneration(): Promise<number>;

  close(): Promise<void>;

  /** Rollback detection's commit counter (anchor.ts); absent where nothing persists (memory, lite). */
  readonly anchor?: CommitAnchor;
}

export type StoreErrorCode =
  | 'store_locked'
  | 'store_already_unlocked'
  | 'store_wrong_key'
  | 'store_cas_mismatch'
  | 'store_integrity'
  | 'store_unavailable'
  | 'store_busy'
  | 'store_closed'
  | 'store_unsupported'
  | 'store_invalid_argument'
  | 'store_schema_too_new'
  | 'store_schema_invalid'
  | 'store_corrupt';

const MESSAGES: Record<StoreErrorCode, string> = {
  store_locked: 'The store is locked: the root key is not known yet.',
  store_already_unlocked: 'The store is already unlocked.',
  store_wrong_key: 'The root key does not open this store.',
  store_cas_mismatch: 'Check-and-set version does not match the current version.',
  store_integrity: 'A stored record failed its integrity check.',
  store_unavailable: 'The storage backend is unavailable.',
  store_busy: 'The database stayed locked by another writer beyond the busy timeout.',
  store_closed: 'The store is closed.',
  store_unsupported: 'This operation is not supported by the configured storage backend.',
  store_invalid_argument: 'Invalid argument passed to the store.',
  store_schema_too_new: 'The database schema is newer than this program supports.',
  store_schema_invalid: 'The database schema does not match what this program expects.',
  store_corrupt: 'The database file is empty, damaged or not a SPIKE database.',
};

/**
 * Why the storage failed, when it can be named (an operator acts differently on each):
 * `disk_full` (SQLITE_FULL, ENOSPC, PostgreSQL 53100), `read_only` (SQLITE_READONLY, EROFS,
 * a read-only PostgreSQL transaction 25006), `unreachable` (PostgreSQL connection refused,
 * reset, timed out, shut down), `io_error` (any other I/O error of the disk), `integrity`
 * (a record failed its check, or the database file is damaged), `timeout` (the request's
 * database deadline, SPIKE_NEXUS_DB_OPERATION_TIMEOUT, passed before the database answered).
 */
export type StoreFailureCause = 'disk_full' | 'read_only' | 'unreachable' | 'io_error' | 'integrity' | 'timeout';

/** Fixed words for each cause, used in the API `message`, the log and the CLI. */
export const STORE_FAILURE_TEXT: Record<StoreFailureCause, string> = {
  disk_full: 'disk full',
  read_only: 'read-only storage',
  unreachable: 'database unreachable',
  io_error: 'I/O error',
  integrity: 'integrity failure',
  timeout: 'database timed out',
};

/**
 * What a failed operation did to the stored data, when the backend can tell: `not_applied`
 * (certainly nothing was written: a read, a write whose COMMIT was never sent, or on SQLite a
 * transaction rolled back after a full disk refused its log frames — safe to retry on any
 * instance) or `unknown` (a COMMIT, or a one-statement write, was sent and its
 * answer never came: it may or may not have been applied).
 */
export type StoreOutcome = 'not_applied' | 'unknown';

/** Typed storage error; the message is fixed per code and never echoes paths or values. */
export class StoreError extends SpikeError {
  declare readonly code: StoreErrorCode;
  /** The named cause, when known (`integrity` for store_integrity / store_corrupt). */
  readonly failure: StoreFailureCause | undefined;
  /** What the failed operation did to the data, when known (see {@link StoreOutcome}). */
  outcome: StoreOutcome | undefined;
  /**
   * The fault behind it already wrote its one ERROR line where it happened (a stopped store's
   * alarm: a failed log sync or checkpoint); the health tracker records it without a line.
   */
  readonly alarmed: boolean;
  constructor(code: StoreErrorCode, options?: { cause?: unknown; failure?: StoreFailureCause; outcome?: StoreOutcome; alarmed?: boolean }) {
    super(code, MESSAGES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.failure = options?.failure ?? (code === 'store_integrity' || code === 'store_corrupt' ? 'integrity' : undefined);
    this.outcome = options?.outcome;
    this.alarmed = options?.alarmed === true;
  }
}

/** Thrown by the `lite` backend for every secret/policy operation (router → SPIKE's 400). */
export class UnsupportedInLiteModeError extends StoreError {
  constructor() {
    super('store_unsupported');
  }
}

/** Options shared by the backends (each backend applies the defaults). */
export interface CommonStoreOptions {
  /** maxVersions for new secrets when the put does not say (SPIKE_NEXUS_MAX_SECRET_VERSIONS, default 10). */
  defaultMaxVersions?: number;
  /** Clock (tests inject a fixed one). */
  now?: () => Date;
}
