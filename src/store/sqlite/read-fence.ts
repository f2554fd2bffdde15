/**
 * Which reads must wait for the WAL sync (wal-sync.ts): SQLite shows a commit at COMMIT, before
 * it is on disk, and an answer must never show what a power loss could still undo. So every
 * write closure records what it wrote against the commit that will hold it, and a read waits
 * only when what it read was written by a commit not yet synced: a GET of one secret waits for
 * a write of that secret, never for the writes of others.
 *
 * Kinds: a secret (by its id: values and metadata), the list of secret paths (a secret
 * created), policies (any policy write also moves the policy generation), system records.
 * Re-encrypted blobs (same plaintext under a newer key) are not tracked: a read of one shows
 * nothing a power loss could undo. The rollback anchor moves with every batch, so a read of it
 * waits for every commit so far (`all`).
 * After a failed sync every read fails (the gate is poisoned).
 */
import type { WalSync } from './wal-sync.js';

/** Tracked secrets before the ones already on disk are first dropped (then at twice what remained). */
const SWEEP_AT = 4096;

export class ReadFence {
  readonly #wal: WalSync;
  readonly #secrets = new Map<string, number>();
  #sweepAt = SWEEP_AT;
  #paths = 0;
  #policies = 0;
  #system = 0;

  constructor(wal: WalSync) {
    this.#wal = wal;
  }

  /** Inside a write closure: the commit that will hold this write (the batch commits next). */
  #next(): number {
    return this.#wal.committed() + 1;
  }

  secretWritten(id: Buffer, created: boolean): void {
    const seq = this.#next();
    if (this.#secrets.size >= this.#sweepAt) {
      // Amortised: with the disk stalled nothing can be dropped, and sweeping again at every
      // write would cost the size of the map each time.
      const durable = this.#wal.durable();
      for (const [k, s] of this.#secrets) if (s <= durable) this.#secrets.delete(k);
      this.#sweepAt = Math.max(SWEEP_AT, 2 * this.#secrets.size);
    }
    this.#secrets.set(id.toString('latin1'), seq);
    if (created) this.#paths = seq;
  }

  policyWritten(): void {
    this.#policies = this.#next();
  }

  systemWritten(): void {
    this.#system = this.#next();
  }

  /** After reading secret `id`: undefined, or what to wait for before answering. */
  secret(id: Buffer): Promise<void> | undefined {
    return this.#wait(this.#secrets.get(id.toString('latin1')) ?? 0);
  }

  paths(): Promise<void> | undefined {
    return this.#wait(this.#paths);
  }

  policies(): Promise<void> | undefined {
    return this.#wait(this.#policies);
  }

  system(): Promise<void> | undefined {
    return this.#wait(this.#system);
  }

  /** Every commit noted so far. */
  all(): Promise<void> | undefined {
    return this.#wait(this.#wal.committed());
  }

  /**
   * A write recorded for a commit that has not happened (still queued, or its batch failed)
   * cannot have been seen by the read: only commits up to the last one noted count.
   */
  #wait(seq: number): Promise<void> | undefined {
    const failed = this.#wal.failed();
    if (failed) return Promise.reject(failed);
    const upTo = Math.min(seq, this.#wal.committed());
    return upTo > 0 ? this.#wal.until(upTo) : undefined;
  }
}
