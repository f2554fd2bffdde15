/**
 * What an unlocked persistent store (sqlite, postgres) holds of the root key and how it
 * changes it: the keyring (keyring.ts) loaded at unlock, seal reservations before writes
 * (AES-GCM use counters), the atomic root-key switch of a rotation, and the steps of the
 * background re-encryption (reencrypt.ts drives them).
 *
 * Atomic switch (rotate-root-key): ONE exclusive transaction over the key records checks the
 * old root against `kcv`, adds a fresh storage and cipher generation to the keyring, writes
 * the keyring sealed under the NEW root's `keyring/v1` key, a new `kcv` for the new root, and
 * the caller's records (the new sharing record) — all or nothing. Before it commits, the store
 * opens with the old root only; after, with the new root only. Crash safety across the Keepers
 * is the caller's order (src/nexus/keys/rotation.ts): new shares are pushed as PENDING before
 * this switch, and promoted after it, so whichever side of the switch a crash lands on, the
 * Keepers hold shares of the root key the store opens with (current or pending epoch).
 *
 * Reservations: a write first reserves the seals it may make (≤ 3: path, metadata, value);
 * when this process's block runs short, a new block is reserved in one transaction on the
 * stored keyring (keyring.ts), so a crash never under-counts. Writes never wait for a
 * reservation they do not need; at most one reservation is in flight.
 *
 * Secrets: a private copy of the root key (to seal the keyring record), destroyed with the
 * custody; the keyring's keys (see keyring.ts).
 */
import { makeKeyCheck, checkKeyCheck, RootKey } from '../crypto/index.js';
import { NoncePool, RecordSealer } from './codec.js';
import { KEY_CHECK_RECORD } from './key-check.js';
import { Keyring, KEYRING_RECORD, type RingName } from './keyring.js';
import { SEAL_FENCE_RECORD, fenceGeneration, sealFence } from './seal-fence.js';
import { StoreError } from './types.js';
import { SETTLE, landedKeyring, type SwitchSettle } from './switch-settle.js';
import type { BlobSwap, CustodyBackend } from './custody-backend.js';

function sameOwner(lease: Uint8Array, owner: Uint8Array): boolean {
  return Buffer.from(lease.subarray(0, 16)).equals(Buffer.from(owner.subarray(0, 16)));
}

function leaseExpiry(lease: Uint8Array): number {
  return Number(new DataView(lease.buffer, lease.byteOffset, 24).getBigUint64(16));
}

export type { BlobSwap, CustodyBackend, KeyRecordsUpdate, StaleBlob } from './custody-backend.js';

/** Keyring reloads for a newer key id named by a record: at most one per this interval. */
const RELOAD_MIN_INTERVAL_MS = 1000;

/** Most seals one write may make (path, metadata, value). */
export const SEALS_PER_WRITE = 3;

export class KeyCustody {
  readonly #backend: CustodyBackend;
  readonly #limit: number;
  #root: RootKey;
  readonly sealer: RecordSealer;
  /** Seals promised to writes in flight (not yet made), per ring. */
  readonly #promised: Record<RingName, number> = { storage: 0, cipher: 0 };
  /** Called when the current storage generation changed (a rotation by limit or by command): start re-encryption. */
  onRotated: (() => void) | undefined;
  #updates: Promise<unknown> = Promise.resolve();
  readonly #reserving: Record<RingName, Promise<void> | null> = { storage: null, cipher: null };
  #reloading: Promise<void> | null = null;
  #lastReload = 0;

  private constructor(backend: CustodyBackend, root: RootKey, sealer: RecordSealer, limit: number) {
    this.#backend = backend;
    this.#root = root;
    this.sealer = sealer;
    this.#limit = limit;
    sealer.onNewerKey = () => this.reloadSoon();
  }

  /**
   * Re-reads the stored keyring (at most one reload at a time, at most one per second):
   * another instance on the same database added a generation (a rotation by the seal limit).
   * A record that names it reads again once this is done. After a root-key rotation by
   * another instance the reload fails (`store_wrong_key`): that instance must restart.
   */
  reloadSoon(): Promise<void> {
    if (this.#reloading) return this.#reloading;
    const wait = Math.max(0, this.#lastReload + RELOAD_MIN_INTERVAL_MS - Date.now());
    this.#reloading = new Promise<void>((r) => setTimeout(r, wait).unref())
      .then(() => this.#update(() => undefined))
      .catch(() => undefined)
      .finally(() => {
        this.#lastReload = Date.now();
        this.#reloading = null;
      });
    return this.#reloading;
  }

  /**
   * Whether another process switched the store to a newer root key (a rotation through another
   * worker or instance): the stored key check no longer opens under this custody's root AND
   * the seal fence names a newer storage generation than this keyring's current one. An older
   * store put back (a rollback) names an older or equal generation. A store altered to fake a
   * newer one only makes this process refuse service (it holds a key the store no longer
   * opens with) until it restarts, where the start-up check judges the store anew.
   */
  rootMovedOn(): Promise<boolean> {
    const mine = this.keyring.storage.current;
    return this.#backend.updateKeyRecords([KEY_CHECK_RECORD, SEAL_FENCE_RECORD], (found) => {
      const kcv = found(KEY_CHECK_RECORD);
      const stored = fenceGeneration(found(SEAL_FENCE_RECORD));
      return { result: kcv !== null && !checkKeyCheck(this.#root, kcv) && stored !== undefined && stored > mine, writes: [] };
    });
  }

  /** Loads the keyring for `root` (already checked against `kcv`); copies `root`. */
  static open(backend: CustodyBackend, root: RootKey, record: Uint8Array | null, limit: number): KeyCustody {
    const nonces = new NoncePool();
    const keyring = Keyring.load(root, record, nonces.take);
    const copy = root.bytes();
    try {
      return new KeyCustody(backend, RootKey.fromBytes(copy), new RecordSealer(keyring, nonces), limit);
    } finally {
      copy.fill(0);
    }
  }

  get keyring(): Keyring {
    return this.sealer.keyring;
  }

  /**
   * Promises `n` seals to one write (reserving a new block first when needed); call the
   * returned function when the write settled.
   */
  async promise(n: number = SEALS_PER_WRITE, ring: RingName = 'storage'): Promise<() => void> {
    for (;;) {
      const release = this.promiseNow(n, ring);
      if (release) return release;
      await this.#reserve(ring);
    }
  }

  /**
   * `promise` without waiting: null when the block is short (then call `promise`). Starts a
   * reservation in the background when less than half a block is left, so writes rarely wait.
   */
  promiseNow(n: number = SEALS_PER_WRITE, ring: RingName = 'storage'): (() => void) | null {
    const r = this.keyring[ring];
    const left = r.remaining() - this.#promised[ring];
    if (left < n) return null;
    if (left - n < r.lowWater(this.#limit)) {
      this.#reserve(ring).catch(() => undefined); // a failure here is retried by the write that needs it
    }
    this.#promised[ring] += n;
    let done = false;
    return () => {
      if (!done) this.#promised[ring] -= n;
      done = true;
    };
  }

  /** Reserves a first block (at unlock, so the first writes do not wait for it). */
  prime(): Promise<void> {
    return this.#reserve();
  }

  /** One reservation at a time; callers re-check after it. */
  #reserve(ring: RingName = 'storage'): Promise<void> {
    this.#reserving[ring] ??= this.#update((fresh) => {
      fresh[ring].reserve(this.#limit);
      return undefined;
    }).finally(() => {
      this.#reserving[ring] = null;
    });
    return this.#reserving[ring];
  }

  /**
   * Reads the stored keyring (checking `kcv` still names our root), lets `change` edit it,
   * writes it back sealed under `sealRoot` (default: our root) with `extra` records, then
   * makes the live keyring hold what was written.
   */
  #update<T>(change: (fresh: Keyring) => T, sealRoot?: RootKey, extra: (fresh: Keyring) => [string, Uint8Array][] = () => []): Promise<T> {
    return this.#queued(() => this.#updateNow(change, sealRoot, extra));
  }

  /**
   * One keyring update at a time in this process: a reservation queued behind a root switch
   * then reads the new root, never the one the switch just replaced.
   */
  #queued<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#updates.then(fn);
    this.#updates = run.catch(() => undefined);
    return run;
  }

  async #updateNow<T>(change: (fresh: Keyring) => T, sealRoot: RootKey | undefined, extra: (fresh: Keyring) => [string, Uint8Array][]): Promise<T> {
    const root = this.#root;
    const target = sealRoot ?? root;
    let fresh: Keyring | undefined;
    try {
      const result = await this.#backend.updateKeyRecords([KEY_CHECK_RECORD, KEYRING_RECORD], (found) => {
        const kcv = found(KEY_CHECK_RECORD);
        if (kcv === null || !checkKeyCheck(root, kcv)) throw new StoreError('store_wrong_key');
        fresh?.destroy();
        fresh = Keyring.load(root, found(KEYRING_RECORD));
        const r = change(fresh);
        const writes: [string, Uint8Array][] = [[KEYRING_RECORD, fresh.seal(target)], [SEAL_FENCE_RECORD, sealFence(fresh.storage.current)], ...extra(fresh)];
        return { result: r, writes };
      });
      if (sealRoot) this.#adoptRoot(sealRoot);
      this.#adoptKeyring(fresh!);
      return result;
    } finally {
      fresh?.destroy();
    }
  }

  /**
   * The atomic root-key switch (see the header): new storage and cipher generations, the
   * keyring under `next`, a new `kcv`, and `records` — in one transaction. Afterwards this
   * store seals with the new generation and holds a copy of `next`.
   */
  switchRoot(next: RootKey, records: [string, Uint8Array][] = [], settle: SwitchSettle = SETTLE): Promise<{ storage: number; cipher: number }> {
    // In the update queue as a whole, the read-back included: nothing queued behind the switch
    // runs with the old root while the outcome is settled.
    return this.#queued(async () => {
      try {
        return await this.#updateNow(
          (fresh) => {
            const storage = fresh.storage.addGeneration();
            fresh.storage.reserve(this.#limit);
            return { storage, cipher: fresh.cipher.addGeneration() };
          },
          next,
          () => [[KEY_CHECK_RECORD, makeKeyCheck(next)], ...records],
        );
      } catch (e) {
        // The COMMIT's answer was lost: if the switch landed, `next` is the store's only key and
        // the caller must not be told "failed" (it would wipe `next`): switch-settle.ts.
        if (!(e instanceof StoreError) || e.outcome !== 'unknown') throw e;
        const fresh = await landedKeyring(this.#backend, next, settle);
        if (fresh === undefined) throw e;
        try {
          this.#adoptRoot(next);
          this.#adoptKeyring(fresh);
          return { storage: fresh.storage.current, cipher: fresh.cipher.current };
        } finally {
          fresh.destroy();
        }
      }
    });
  }

  /** The live keyring takes the keys of `fresh` (read from the store). */
  #adoptKeyring(fresh: Keyring): void {
    const before = this.keyring.storage.current;
    this.keyring.storage.adopt(fresh.storage);
    this.keyring.cipher.adopt(fresh.cipher);
    // The keys changed (added, erased): no state opened under the old set is handed out again.
    this.sealer.forgetOpened();
    if (this.keyring.storage.current !== before) this.onRotated?.();
  }

  /** The keyring is sealed under `root` from here on: our root becomes a copy of it. */
  #adoptRoot(root: RootKey): void {
    const copy = root.bytes();
    try {
      this.#root.destroy();
      this.#root = RootKey.fromBytes(copy);
    } finally {
      copy.fill(0);
    }
  }

  /**
   * One re-encryption step: re-seals up to `limit` blobs under older key ids with the
   * current generation (each written only if unchanged since read, so concurrent writes
   * win). Returns how many were found and written; `found` 0 means none is left.
   */
  async reencryptStep(limit: number): Promise<{ found: number; written: number; failed: number }> {
    const current = this.keyring.storage.current;
    const stale = await this.#backend.scanStale(current, limit);
    if (stale.length === 0) return { found: 0, written: 0, failed: 0 };
    const release = await this.promise(stale.length);
    try {
      const swaps: BlobSwap[] = [];
      for (const s of stale) {
        try {
          swaps.push({ cell: s.cell, old: s.blob, blob: this.sealer.reseal(s.cell, s.blob) });
        } catch {
          // A blob that fails its check (or names an erased key) stays as it is; reads report it.
        }
      }
      const written = swaps.length > 0 ? await this.#backend.replaceBlobs(swaps) : 0;
      return { found: stale.length, written, failed: stale.length - swaps.length };
    } finally {
      release();
    }
  }

  /**
   * Takes the cross-process lease `name` (a system record: `owner` (16 bytes) ‖ expiry in ms
   * since the epoch, u64 BE) until `ttlMs` from now; false while another owner holds one that
   * has not expired. One key-records transaction, so two processes never both get it.
   */
  takeLease(name: string, owner: Uint8Array, ttlMs: number): Promise<boolean> {
    return this.#backend.updateKeyRecords([name], (found) => {
      const held = found(name);
      const now = Date.now();
      if (held !== null && held.length === 24 && !sameOwner(held, owner) && leaseExpiry(held) > now) return { result: false, writes: [] };
      const rec = new Uint8Array(24);
      rec.set(owner.subarray(0, 16));
      new DataView(rec.buffer).setBigUint64(16, BigInt(now + ttlMs));
      return { result: true, writes: [[name, rec]] };
    });
  }

  /** Ends `owner`'s lease `name` (expires it now); someone else's lease is left alone. */
  releaseLease(name: string, owner: Uint8Array): Promise<void> {
    return this.#backend.updateKeyRecords([name], (found) => {
      const held = found(name);
      if (held === null || held.length !== 24 || !sameOwner(held, owner)) return { result: undefined, writes: [] };
      const rec = Uint8Array.from(held);
      new DataView(rec.buffer).setBigUint64(16, 0n);
      return { result: undefined, writes: [[name, rec]] };
    });
  }

  /** Erases every storage generation older than the current one (call when no blob uses them). */
  async eraseOlder(): Promise<number[]> {
    const held = this.keyring.storage.ids();
    if (held.length <= 1) return [];
    return this.#update((fresh) => fresh.storage.dropOlder());
  }

  destroy(): void {
    this.sealer.destroy();
    this.#root.destroy();
  }
}
