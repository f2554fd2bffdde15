/**
 * `lite` backend: stores nothing. Nexus in lite mode serves only the cipher, bootstrap
 * verification and operator routes, so every secret/policy operation throws
 * UnsupportedInLiteModeError (the router maps it to SPIKE's 400) — except `listPolicies`
 * (→ []) and `policyGeneration` (→ 0), which authorisation code may call in any mode. System records
 * (commitments, key-check record) are kept in memory only, for the life of the process.
 */
import { SystemRecords } from './in-process.js';
import type { RootKey } from '../crypto/index.js';
import {
  StoreError, UnsupportedInLiteModeError, type PolicyRecord, type SecretMetadata,
  type SecretVersionInfo, type Store,
} from './types.js';

export class LiteStore implements Store {
  readonly kind = 'lite' as const;
  private readonly system = new SystemRecords();
  private unlocked = false;
  private closed = false;

  private check(): void {
    if (this.closed) throw new StoreError('store_closed');
  }

  private unsupported(): never {
    this.check();
    throw new UnsupportedInLiteModeError();
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
    this.unlocked = true;
  }

  isUnlocked(): boolean {
    return this.unlocked;
  }

  async putSecret(): Promise<{ version: number }> { return this.unsupported(); }
  async getSecret(): Promise<{ version: number; values: Record<string, string> } | null> { return this.unsupported(); }
  async deleteSecret(): Promise<boolean> { return this.unsupported(); }
  async undeleteSecret(): Promise<boolean> { return this.unsupported(); }
  async destroySecret(): Promise<boolean> { return this.unsupported(); }
  async getSecretMetadata(): Promise<{ metadata: SecretMetadata; versions: SecretVersionInfo[] } | null> { return this.unsupported(); }
  async listSecretPaths(): Promise<string[]> { return this.unsupported(); }
  async putPolicy(): Promise<PolicyRecord> { return this.unsupported(); }
  async getPolicy(): Promise<PolicyRecord | null> { return this.unsupported(); }
  async deletePolicy(): Promise<boolean> { return this.unsupported(); }
  /** Authorisation may ask: lite holds no policies (reads answer "none", writes throw). */
  async listPolicies(): Promise<PolicyRecord[]> { this.check(); return []; }
  async policyGeneration(): Promise<number> { this.check(); return 0; }

  async close(): Promise<void> {
    this.closed = true;
    this.system.clear();
  }
}
