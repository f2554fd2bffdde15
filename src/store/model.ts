/**
 * Secret versioning semantics, written once as pure functions over a decoded record.
 * Every backend loads a `SecretState`, calls one of these, and persists the result plus
 * the reported side effects (new version's values, pruned/destroyed versions to wipe).
 * Values are not part of the state: backends keep them per version (memory: a map; sqlite:
 * one sealed row per version), so metadata-only operations never touch value blobs.
 *
 * SPIKE semantics (../spec/api.md §5, storage.md §3) with these deliberate fixes:
 * - Version numbers are never reused. A put creates `lastVersion + 1`, where `lastVersion`
 *   is the highest number ever written. SPIKE uses `current + 1`, which equals this
 *   whenever the newest version is live, but re-uses (overwrites) a soft-deleted version
 *   number when the newest version was deleted.
 * - Pruning really removes versions (gaps B2): when more than `maxVersions` versions exist,
 *   the lowest-numbered are dropped (live or deleted) and reported in `pruned`.
 * - The operator's `maxVersionsCeiling` caps a secret's `maxVersions` (requested or stored)
 *   on every put: a writer can keep fewer versions than the operator allows, never more.
 * - `currentVersion` is always the highest live version (0 if none) and `oldestVersion`
 *   the lowest live version (0 if none), after every operation (SPIKE recomputes oldest
 *   differently after put and after delete).
 * - Undelete with no versions (or with `0`, which is what `spike secret undelete <path>`
 *   sends) restores the **highest deleted version** — "undo my last delete" — instead of
 *   SPIKE's `[current]`, which is live by construction and so always failed (gaps B19).
 * - Delete does not re-stamp versions that are already deleted (keeps the first time).
 * - Destroy (Vault extra): removes the listed versions for good; empty list or `0` = the
 *   current version, like delete.
 * - `cas` (Vault extra) compares against `lastVersion`; `cas: 0` means "path must not exist".
 * - Metadata versions carry their real version numbers (gaps B3).
 */
import { StoreError, type PutSecretOptions, type SecretMetadata, type SecretVersionInfo } from './types.js';

export interface VersionState {
  createdTime: Date;
  deletedTime: Date | null;
}

export interface SecretMeta {
  currentVersion: number;
  oldestVersion: number;
  lastVersion: number;
  createdTime: Date;
  updatedTime: Date;
  maxVersions: number;
  customMetadata?: Record<string, string>;
}

export interface SecretState {
  meta: SecretMeta;
  versions: Map<number, VersionState>;
}

export const DEFAULT_MAX_VERSIONS = 10;

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

export interface PutResult {
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
 * Which version a read returns, or null for every 404 case of api.md §5.2: path unknown,
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

export interface ChangeResult {
  state: SecretState;
  /** Versions whose state actually changed (empty → nothing to persist). */
  changed: number[];
}

/** Soft delete (api.md §5.3): empty list or `0` = current version. */
export function applyDelete(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  const s = cloneState(state);
  const targets = versions.length === 0 ? normaliseVersions([0], s.meta.currentVersion) : normaliseVersions(versions, s.meta.currentVersion);
  const changed: number[] = [];
  for (const v of targets) {
    const e = s.versions.get(v);
    if (e && e.deletedTime === null) {
      e.deletedTime = now;
      changed.push(v);
    }
  }
  if (changed.length > 0) {
    s.meta.updatedTime = now;
    recompute(s);
  }
  return { state: s, changed: changed.sort((a, b) => a - b) };
}

/** The version undelete restores by default: the highest deleted one (0 if none). */
export function highestDeletedVersion(state: SecretState): number {
  let best = 0;
  for (const [v, e] of state.versions) if (e.deletedTime !== null && v > best) best = v;
  return best;
}

/** Undelete (api.md §5.4 with the B19 fix): empty list or `0` = highest deleted version. */
export function applyUndelete(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  const s = cloneState(state);
  const dflt = highestDeletedVersion(s);
  const targets = versions.length === 0 ? normaliseVersions([0], dflt) : normaliseVersions(versions, dflt);
  const changed: number[] = [];
  for (const v of targets) {
    const e = s.versions.get(v);
    if (e && e.deletedTime !== null) {
      e.deletedTime = null;
      changed.push(v);
    }
  }
  if (changed.length > 0) {
    s.meta.updatedTime = now;
    recompute(s);
  }
  return { state: s, changed: changed.sort((a, b) => a - b) };
}

/** Destroy (Vault extra): listed versions removed for good; empty list or `0` = current. */
export function applyDestroy(state: SecretState, versions: readonly number[], now: Date): ChangeResult {
  const s = cloneState(state);
  const targets = versions.length === 0 ? normaliseVersions([0], s.meta.currentVersion) : normaliseVersions(versions, s.meta.currentVersion);
  const changed: number[] = [];
  for (const v of targets) {
    if (s.versions.delete(v)) changed.push(v);
  }
  if (changed.length > 0) {
    s.meta.updatedTime = now;
    recompute(s);
  }
  return { state: s, changed: changed.sort((a, b) => a - b) };
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
