/**
 * `memory` backend: everything in process maps, nothing persisted, no root key needed
 * (SPIKE's standalone mode). `unlock` is accepted and ignored. Each operation runs
 * synchronously to completion, so read-modify-write is atomic without locks. Values are
 * copied in and out (null-prototype objects), so callers can never alias stored state.
 */
import { SystemRecords } from './in-process.js';
import type { RootKey } from '../crypto/index.js';
import {
  applyDelete, applyDestroy, applyPut, applyUndelete, copyStringMap, DEFAULT_MAX_VERSIONS,
  resolveReadVersion, toMetadata, type SecretState,
} from './model.js';
import {
  StoreError, type CommonStoreOptions, type PolicyInput, type PolicyRecord, type PutSecretOptions,
  type SecretMetadata, type SecretVersionInfo, type Store,
} from './types.js';

interface Entry {
  state: SecretState;
  values: Map<number, Record<string, string>>;
}

export function clonePolicy(p: PolicyRecord): PolicyRecord {
  return {
    name: p.name,
    spiffeIdPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: [...p.permissions],
    createdAt: new Date(p.createdAt.getTime()),
    updatedAt: new Date(p.updatedAt.getTime()),
  };
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly system = new SystemRecords();
  private readonly secrets = new Map<string, Entry>();
  private readonly policies = new Map<string, PolicyRecord>();
  private generation = 0;
  private closed = false;
  private readonly defaultMaxVersions: number;
  private readonly now: () => Date;

  constructor(opts: CommonStoreOptions = {}) {
    this.defaultMaxVersions = opts.defaultMaxVersions ?? DEFAULT_MAX_VERSIONS;
    this.now = opts.now ?? (() => new Date());
  }

  private check(): void {
    if (this.closed) throw new StoreError('store_closed');
  }

  async getSystem(key: string): Promise<Uint8Array | null> {
    this.check();
    return this.system.get(key);
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    this.check();
    return this.system.putIfAbsent(key, value);
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    this.check();
    this.system.put(key, value);
  }

  async unlock(_root: RootKey): Promise<void> {
    this.check();
  }

  isUnlocked(): boolean {
    return true;
  }

  async putSecret(path: string, values: Record<string, string>, opts: PutSecretOptions = {}): Promise<{ version: number }> {
    this.check();
    const entry = this.secrets.get(path);
    const r = applyPut(entry?.state ?? null, opts, this.defaultMaxVersions, this.now());
    const next: Entry = entry ?? { state: r.state, values: new Map() };
    next.state = r.state;
    next.values.set(r.version, copyStringMap(values));
    for (const v of r.pruned) next.values.delete(v);
    this.secrets.set(path, next);
    return { version: r.version };
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

  async deleteSecret(path: string, versions: number[]): Promise<boolean> {
    this.check();
    const entry = this.secrets.get(path);
    if (!entry) return false;
    entry.state = applyDelete(entry.state, versions, this.now()).state;
    return true;
  }

  async undeleteSecret(path: string, versions: number[]): Promise<boolean> {
    this.check();
    const entry = this.secrets.get(path);
    if (!entry) return false;
    const r = applyUndelete(entry.state, versions, this.now());
    entry.state = r.state;
    return r.changed.length > 0;
  }

  async destroySecret(path: string, versions: number[]): Promise<boolean> {
    this.check();
    const entry = this.secrets.get(path);
    if (!entry) return false;
    const r = applyDestroy(entry.state, versions, this.now());
    entry.state = r.state;
    for (const v of r.changed) entry.values.delete(v);
    return true;
  }

  async getSecretMetadata(path: string): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> {
    this.check();
    const entry = this.secrets.get(path);
    return entry ? toMetadata(entry.state) : null;
  }

  async listSecretPaths(): Promise<string[]> {
    this.check();
    return [...this.secrets.keys()].sort(compareCodeUnits);
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

  async close(): Promise<void> {
    this.closed = true;
    this.secrets.clear();
    this.policies.clear();
    this.system.clear();
  }
}

export { compareCodeUnits };
