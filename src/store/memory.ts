/**
 * `memory` backend: everything in process maps, nothing persisted, no root key needed
 * (SPIKE's standalone mode). `unlock` is accepted and ignored. Each operation runs
 * synchronously to completion, so read-modify-write is atomic without locks. Values are
 * copied in and out (null-prototype objects), so callers can never alias stored state.
 * Paths are listed from a sorted index kept beside the map (path-index.ts).
 */
import type { RootKey } from '../crypto/index.js';
import { InProcessStore } from './in-process.js';
import { PathIndex } from './path-index.js';
import {
  compareCodeUnits, copyStringMap, DEFAULT_MAX_VERSIONS, planChange, planPut, resolveReadVersion, toMetadata,
  type ChangeKind, type SecretState, type SecretWrite,
} from './model.js';
import {
  StoreError, type CommonStoreOptions, type PolicyInput, type PolicyRecord, type PutSecretOptions,
  type SecretMetadata, type SecretPathPage, type SecretPathQuery, type SecretVersionInfo, type Store,
} from './types.js';

interface Entry {
  state: SecretState;
  values: Map<number, Record<string, string>>;
}

function clonePolicy(p: PolicyRecord): PolicyRecord {
  return {
    name: p.name,
    spiffeIdPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: [...p.permissions],
    createdAt: new Date(p.createdAt.getTime()),
    updatedAt: new Date(p.updatedAt.getTime()),
  };
}

export class MemoryStore extends InProcessStore implements Store {
  readonly kind = 'memory' as const;
  private readonly secrets = new Map<string, Entry>();
  private readonly paths = new PathIndex();
  private readonly policies = new Map<string, PolicyRecord>();
  private generation = 0;
  private readonly defaultMaxVersions: number;
  private readonly now: () => Date;

  constructor(opts: CommonStoreOptions = {}) {
    super();
    this.defaultMaxVersions = opts.defaultMaxVersions ?? DEFAULT_MAX_VERSIONS;
    this.now = opts.now ?? (() => new Date());
  }

  async unlock(_root: RootKey): Promise<void> {
    this.check();
  }

  isUnlocked(): boolean {
    return true;
  }

  /** Persists one planned secret write in the maps. */
  #apply<T>(path: string, plan: (before: SecretState | null) => SecretWrite<T>): T {
    this.check();
    const entry = this.secrets.get(path);
    const planned = plan(entry?.state ?? null);
    if (planned.state === null) return planned.result;
    const next: Entry = entry ?? { state: planned.state, values: new Map() };
    next.state = planned.state;
    if (planned.added) next.values.set(planned.added.version, copyStringMap(planned.added.values));
    for (const v of planned.dropped) next.values.delete(v);
    if (!entry) {
      this.secrets.set(path, next);
      this.paths.add(path);
    }
    return planned.result;
  }

  #change(kind: ChangeKind, path: string, versions: number[]): boolean {
    return this.#apply(path, (before) => planChange(kind, before, versions, this.now()));
  }

  async putSecret(path: string, values: Record<string, string>, opts: PutSecretOptions = {}): Promise<{ version: number }> {
    return this.#apply(path, (before) => planPut(before, values, opts, this.defaultMaxVersions, this.now()));
  }

  async getSecret(path: string, version?: number): Promise<{ version: number; values: Record<string, string> } | null> {
    this.check();
    const entry = this.secrets.get(path);
    const v = resolveReadVersion(entry?.state ?? null, version);
    if (v === null || !entry) return null;
    const values = entry.values.get(v);
    if (!values) throw new StoreError('store_integrity');
    return { version: v, values: copyStringMap(values) };
  }

  async deleteSecret(path: string, versions: number[]): Promise<boolean> { return this.#change('delete', path, versions); }
  async undeleteSecret(path: string, versions: number[]): Promise<boolean> { return this.#change('undelete', path, versions); }
  async destroySecret(path: string, versions: number[]): Promise<boolean> { return this.#change('destroy', path, versions); }

  async getSecretMetadata(path: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> {
    this.check();
    const entry = this.secrets.get(path);
    return entry ? toMetadata(entry.state) : null;
  }

  async listSecretPaths(): Promise<string[]> {
    return (await this.listSecretPathPage({})).paths;
  }

  async listSecretPathPage(q: SecretPathQuery): Promise<SecretPathPage> {
    this.check();
    return this.paths.scan(q);
  }

  async putPolicy(p: PolicyInput): Promise<PolicyRecord> {
    this.check();
    const now = this.now();
    const old = this.policies.get(p.name);
    const rec: PolicyRecord = {
      name: p.name,
      spiffeIdPattern: p.spiffeIdPattern,
      pathPattern: p.pathPattern,
      permissions: [...p.permissions],
      createdAt: old ? old.createdAt : now,
      updatedAt: now,
    };
    this.policies.set(p.name, rec);
    this.generation++;
    return clonePolicy(rec);
  }

  async getPolicy(name: string): Promise<PolicyRecord | null> {
    this.check();
    const p = this.policies.get(name);
    return p ? clonePolicy(p) : null;
  }

  async deletePolicy(name: string): Promise<boolean> {
    this.check();
    const existed = this.policies.delete(name);
    if (existed) this.generation++;
    return existed;
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    this.check();
    return [...this.policies.values()].sort((a, b) => compareCodeUnits(a.name, b.name)).map(clonePolicy);
  }

  async policyGeneration(): Promise<number> {
    this.check();
    return this.generation;
  }

  protected forget(): void {
    this.secrets.clear();
    this.paths.clear();
    this.policies.clear();
  }
}
