/**
 * `lite` backend: stores nothing. Nexus in lite mode serves only the cipher, bootstrap
 * verification and operator routes, so every secret/policy operation throws
 * UnsupportedInLiteModeError (the router maps it to SPIKE's 400) — except `listPolicies`
 * (→ []) and `policyGeneration` (→ 0), which authorisation code may call in any mode. System records
 * (commitments, key-check record) are kept in memory only, for the life of the process.
 */
import type { RootKey } from '../crypto/index.js';
import { InProcessStore } from './in-process.js';
import {
  UnsupportedInLiteModeError, type PolicyRecord, type SecretMetadata, type SecretPathPage, type SecretVersionInfo, type Store,
} from './types.js';

export class LiteStore extends InProcessStore implements Store {
  readonly kind = 'lite' as const;
  private unlocked = false;

  private unsupported(): never {
    this.check();
    throw new UnsupportedInLiteModeError();
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
  async listSecretPathPage(): Promise<SecretPathPage> { return this.unsupported(); }
  async putPolicy(): Promise<PolicyRecord> { return this.unsupported(); }
  async getPolicy(): Promise<PolicyRecord | null> { return this.unsupported(); }
  async deletePolicy(): Promise<boolean> { return this.unsupported(); }
  /** Authorisation may ask: lite holds no policies (reads answer "none", writes throw). */
  async listPolicies(): Promise<PolicyRecord[]> { this.check(); return []; }
  async policyGeneration(): Promise<number> { this.check(); return 0; }

  protected forget(): void {
    // nothing besides the system records
  }
}
