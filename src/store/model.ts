/**
 * Secret versioning semantics, written once as pure functions over a decoded record.
 * Every backend loads a `SecretState`, asks `planPut` / `planChange` what to do, and
 * persists the `SecretWrite` it gets back (new state, the new version's values, the
 * pruned/destroyed versions to wipe). Values are not part of the state: backends keep them
 * per version (memory: a map; sqlite/postgres: one sealed row per version), so
 * metadata-only operations never touch value blobs.
 *
 * SPIKE's semantics, with these deliberate fixes:
 * - Version numbers are never reused. A put creates `lastVersion + 1`, where `lastVersion`
 *   is the highest number ever written. SPIKE uses `current + 1`, which equals this
 *   whenever the newest version is live, but re-uses (overwrites) a soft-deleted version
 *   number when the newest version was deleted.
 * - Pruning really removes versions (B2): when more than `maxVersions` versions exist,
 *   the lowest-numbered are dropped (live or deleted) and reported in `pruned`.
 * - The operator's `maxVersionsCeiling` caps a secret's `maxVersions` (requested or stored)
 *   on every put: a writer can keep fewer versions than the operator allows, never more.
 * - `currentVersion` is always the highest live version (0 if none) and `oldestVersion`
 *   the lowest live version (0 if none), after every operation (SPIKE recomputes oldest
 *   differently after put and after delete).
 * - Undelete with no versions (or with `0`, which is what `spike secret undelete <path>`
 *   sends) restores the **highest deleted version** — "undo my last delete" — instead of
 *   SPIKE's `[current]`, which is live by construction and so always failed (B19).
 * - Delete does not re-stamp versions that are already deleted (keeps the first time).
 * - Destroy (Vault extra): removes the listed versions for good; empty list or `0` = the
 *   current version, like delete.
 * - `cas` (Vault extra) compares against `lastVersion`; `cas: 0` means "path must not exist".
 * - Metadata versions carry their real version numbers (B3).
 */
import { StoreError, type PutSecretOptions, type SecretMetadata, type SecretVersionInfo } from './types.js';

export interface VersionState {
  createdTime: Date;
  deletedTime: Date | null;
}

/** The stored metadata has exactly the fields of the public view. */
type SecretMeta = SecretMetadata;

export interface SecretState {
  meta: SecretMeta;
  versions: Map<number, VersionState>;
}

export const DEFAULT_MAX_VERSIONS = 10;

/** Listing order of paths and policy names: UTF-16 code units, as Go's string comparison. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A null-prototype copy of a string map: `__proto__` & co. are ordinary own keys. */
export function copyStringMap(src: Record<string, string>): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(src)) out[k] = v;
  return out;
}

/** Map → null-prototype object, from `[key, value]` pairs (used by decoders). */
export function stringMapFromPairs(pairs: Iterable<readonly [string, string]>): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of pairs) out[k] = v;
  return out;
}

function isValidMaxVersions(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

function cloneState(s: SecretState): SecretState {
  const meta: SecretMeta = { ...s.meta };
  if (s.meta.customMetadata) meta.customMetadata = copyStringMap(s.meta.customMetadata);
  const versions = new Map<number, VersionState>();
  for (const [v, e] of s.versions) versions.set(v, { createdTime: e.createdTime, deletedTime: e.deletedTime });
  return { meta, versions };
}

/** Recomputes current (highest live, else 0) and oldest (lowest live, else 0). */
function recompute(s: SecretState): void {
  let cur = 0;
  let old = 0;
  for (const [v, e] of s.versions) {
    if (e.deletedTime !== null) continue;
    if (v > cur) cur = v;
    if (old === 0 || v < old) old = v;
  }
  s.meta.currentVersion = cur;
  s.meta.oldestVersion = old;
}

/** Distinct, valid version numbers from a request list; `0` → `zeroMeans` (skipped when 0). */
function normaliseVersions(list: readonly number[], zeroMeans: number): number[] {
  const out = new Set<number>();
  for (const v of list) {
    if (!Number.isSafeInteger(v) || v < 0) continue;
    const r = v === 0 ? zeroMeans : v;
    if (r > 0) out.add(r);
  }
  return [...out];
}

interface PutResult {
  state: SecretState;
  version: number;
  /** Versions removed by max-versions pruning: their values must be deleted by the backend. */
  pruned: number[];
}

/**
 * A new version on `state` (null = path does not exist yet).
 * Throws StoreError('store_cas_mismatch') or ('store_invalid_argument').
 */
export function applyPut(
  state: SecretState | null,
  opts: PutSecretOptions,
  defaultMaxVersions: number,
  now: Date,
): PutResult {
  if (opts.maxVersions !== undefined && !isValidMaxVersions(opts.maxVersions)) {
    throw new StoreError('store_invalid_argument');
  }
  const ceiling = opts.maxVersionsCeiling;
  if (ceiling !== undefined && !isValidMaxVersions(ceiling)) throw new StoreError('store_invalid_argument');
  const capped = (n: number): number => (ceiling !== undefined && n > ceiling ? ceiling : n);
  if (opts.cas !== undefined) {
    if (!Number.isSafeInteger(opts.cas) || opts.cas < 0) throw new StoreError('store_invalid_argument');
    const last = state ? state.meta.lastVersion : 0;
    if (state === null ? opts.cas !== 0 : opts.cas !== last) throw new StoreError('store_cas_mismatch');
  }
  let s: SecretState;
  if (state === null) {
    s = {
      meta: {
        currentVersion: 0,
        oldestVersion: 0,
        lastVersion: 0,
        createdTime: now,
        updatedTime: now,
        maxVersions: capped(opts.maxVersions ?? defaultMaxVersions),
      },
      versions: new Map(),
    };
  } else {
    s = cloneState(state);
    // A value stored before the ceiling was lowered is clamped too (and pruned below).
    s.meta.maxVersions = capped(opts.maxVersions ?? s.meta.maxVersions);
  }
  if (opts.customMetadata !== undefined) s.meta.customMetadata = copyStringMap(opts.customMetadata);

  const version = s.meta.lastVersion + 1;
  s.versions.set(version, { createdTime: now, deletedTime: null });
  s.meta.lastVersion = version;
  s.meta.updatedTime = now;

  const pruned: number[] = [];
  if (s.versions.size > s.meta.maxVersions) {
    const sorted = [...s.versions.keys()].sort((a, b) => a - b);
    const excess = s.versions.size - s.meta.maxVersions;
    for (const v of sorted.slice(0, excess)) {
      s.versions.delete(v);
      pruned.push(v);
    }
  }
  recompute(s);
  return { state: s, version, pruned };
}

/**
 * Which version a read returns, or null for every case SPIKE answers 404: path unknown,
 * current version 0 (all deleted), version absent (never existed, pruned, destroyed),
 * version soft-deleted. `version` 0/undefined = current.
 */
export function resolveReadVersion(state: SecretState | null, version?: number): number | null {
  if (state === null) return null;
  if (version !== undefined && (!Number.isSafeInteger(version) || version < 0)) return null;
  const v = version === undefined || version === 0 ? state.meta.currentVersion : version;
  if (v === 0) return null;
  const e = state.versions.get(v);
  if (!e || e.deletedTime !== null) return null;
  return v;
}

interface ChangeResult {
  state: SecretState;
  /** Versions whose state actually changed (empty → nothing to persist). */
  changed: number[];
}

/**
 * Applies `mutate` to each target version (returns true when it changed one); stamps the
 * update time and recomputes current/oldest only when something changed.
 */
function changeVersions(
  state: SecretState,
  targets: readonly number[],
  now: Date,
  mutate: (s: SecretState, v: number) => boolean,
): ChangeResult {
  const s = cloneState(state);
  const changed = targets.filter((v) => mutate(s, v));
  if (changed.length > 0) {
    s.meta.updatedTime = now;
    recompute(s);
  }
  return { state: s, changed: changed.sort((a, b) => a - b) };
}

/** The request's version list with `0` (or an empty list) meaning `zeroMeans`. */
function targetsOf(versions: readonly number[], zeroMeans: number): number[] {
  return normaliseVersions(versions.length === 0 ? [0] : versions, zeroMeans);
}

/** Soft delete: empty list or `0` = current version. */
export function applyDelete(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  return changeVersions(state, targetsOf(versions, state.meta.currentVersion), now, (s, v) => {
    const e = s.versions.get(v);
    if (!e || e.deletedTime !== null) return false;
    e.deletedTime = now;
    return true;
  });
}

/** The version undelete restores by default: the highest deleted one (0 if none). */
function highestDeletedVersion(state: SecretState): number {
  let best = 0;
  for (const [v, e] of state.versions) if (e.deletedTime !== null && v > best) best = v;
  return best;
}

/** Undelete (with the B19 fix): empty list or `0` = highest deleted version. */
export function applyUndelete(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  return changeVersions(state, targetsOf(versions, highestDeletedVersion(state)), now, (s, v) => {
    const e = s.versions.get(v);
    if (!e || e.deletedTime === null) return false;
    e.deletedTime = null;
    return true;
  });
}

/** Destroy (Vault extra): listed versions removed for good; empty list or `0` = current. */
export function applyDestroy(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  return changeVersions(state, targetsOf(versions, state.meta.currentVersion), now, (s, v) => s.versions.delete(v));
}

/**
 * What a backend persists after one secret operation, all in one atomic step.
 * `state` null: nothing to write (unknown path, or nothing changed).
 */
export interface SecretWrite<T> {
  /** What the Store method returns. */
  result: T;
  state: SecretState | null;
  /** True when the path is new (the backend creates its row and stores the path). */
  created: boolean;
  /** The new version and its values (puts only). */
  added: { version: number; values: Record<string, string> } | null;
  /** Versions whose values must be wiped (pruned by a put, or destroyed). */
  dropped: number[];
}

/** A put on `before` (null = unknown path); throws `store_cas_mismatch` / `store_invalid_argument`. */
export function planPut(
  before: SecretState | null,
  values: Record<string, string>,
  opts: PutSecretOptions,
  defaultMaxVersions: number,
  now: Date,
): SecretWrite<{ version: number }> {
  const r = applyPut(before, opts, defaultMaxVersions, now);
  return {
    result: { version: r.version },
    state: r.state,
    created: before === null,
    added: { version: r.version, values },
    dropped: r.pruned,
  };
}

export type ChangeKind = 'delete' | 'undelete' | 'destroy';

const CHANGES: Record<ChangeKind, (s: SecretState, list: readonly number[], now: Date) => ChangeResult> = {
  delete: applyDelete,
  undelete: applyUndelete,
  destroy: applyDestroy,
};

/**
 * Delete, undelete or destroy on `before`. Result: false for an unknown path; undelete is
 * also false when nothing was restored; delete and destroy of a known path are true.
 */
export function planChange(kind: ChangeKind, before: SecretState | null, versions: readonly number[], now: Date): SecretWrite<boolean> {
  const none = (result: boolean): SecretWrite<boolean> => ({ result, state: null, created: false, added: null, dropped: [] });
  if (before === null) return none(false);
  const r = CHANGES[kind](before, versions, now);
  if (r.changed.length === 0) return none(kind !== 'undelete');
  return { result: true, state: r.state, created: false, added: null, dropped: kind === 'destroy' ? r.changed : [] };
}

/** Public metadata view: versions ascending, each with its real number. */
export function toMetadata(state: SecretState): { metadata: SecretMetadata; versions: SecretVersionInfo[] } {
  const m = state.meta;
  const metadata: SecretMetadata = {
    currentVersion: m.currentVersion,
    oldestVersion: m.oldestVersion,
    lastVersion: m.lastVersion,
    createdTime: new Date(m.createdTime.getTime()),
    updatedTime: new Date(m.updatedTime.getTime()),
    maxVersions: m.maxVersions,
  };
  if (m.customMetadata) metadata.customMetadata = copyStringMap(m.customMetadata);
  const versions = [...state.versions.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([version, e]) => ({
      version,
      createdTime: new Date(e.createdTime.getTime()),
      deletedTime: e.deletedTime ? new Date(e.deletedTime.getTime()) : null,
    }));
  return { metadata, versions };
}

/**
 * Checks the invariants a decoded state must satisfy (used by decoders: a state that
 * violates them was not written by this code → integrity error).
 */
export function isConsistentState(s: SecretState): boolean {
  const m = s.meta;
  if (!isValidMaxVersions(m.maxVersions)) return false;
  if (!Number.isSafeInteger(m.lastVersion) || m.lastVersion < 0) return false;
  for (const v of s.versions.keys()) if (!Number.isSafeInteger(v) || v < 1 || v > m.lastVersion) return false;
  const probe: SecretState = { meta: { ...m }, versions: s.versions };
  recompute(probe);
  return probe.meta.currentVersion === m.currentVersion && probe.meta.oldestVersion === m.oldestVersion;
}
