/**
 * What the two stores that keep nothing on disk (`memory`, `lite`) share: their system
 * records (public bytes: commitments, sharing parameters, key-check record) held in
 * process, the closed flag, and key adoption. Values are copied in and out, so callers can
 * neither alias nor mutate what is held. Neither store checks the key on `unlock` (they
 * hold nothing sealed); `adoptKey` still checks it against the key-check record.
 */
import type { RootKey } from '../crypto/index.js';
import { adoptionResult, settleKeyRecords, type KeyRecordsTx } from './key-check.js';
import { StoreError, type AdoptionResult, type KeyAdoption } from './types.js';

class SystemRecords implements KeyRecordsTx {
  readonly #map = new Map<string, Uint8Array>();

  get(key: string): Uint8Array | null {
    const v = this.#map.get(key);
    return v ? new Uint8Array(v) : null;
  }

  putIfAbsent(key: string, value: Uint8Array): boolean {
    if (this.#map.has(key)) return false;
    this.#map.set(key, new Uint8Array(value));
    return true;
  }

  put(key: string, value: Uint8Array): void {
    this.#map.set(key, new Uint8Array(value));
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Base of `MemoryStore` and `LiteStore`: system records, closing, key adoption. */
export abstract class InProcessStore {
  readonly #system = new SystemRecords();
  #closed = false;

  protected check(): void {
    if (this.#closed) throw new StoreError('store_closed');
  }

  async getSystem(key: string): Promise<Uint8Array | null> {
    this.check();
    return this.#system.get(key);
  }

  async putSystemIfAbsent(key: string, value: Uint8Array): Promise<boolean> {
    this.check();
    return this.#system.putIfAbsent(key, value);
  }

  async putSystem(key: string, value: Uint8Array): Promise<void> {
    this.check();
    this.#system.put(key, value);
  }

  abstract unlock(root: RootKey): Promise<void>;

  /** Each call runs to completion synchronously: atomic without locks. */
  async adoptKey<Refusal extends string>(root: RootKey, adoption: KeyAdoption<Refusal>): Promise<AdoptionResult<Refusal>> {
    this.check();
    const result = adoptionResult(settleKeyRecords(this.#system, root, adoption));
    if (result.ok) await this.unlock(root);
    return result;
  }

  /** Drops every record; later calls throw `store_closed`. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#system.clear();
    this.forget();
  }

  /** Drops what the subclass holds besides system records. */
  protected abstract forget(): void;
}
