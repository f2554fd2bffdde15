/**
 * Background re-encryption: after a root-key rotation (or an automatic data-key rotation at
 * the seal limit), every blob still sealed under an older storage key id is re-sealed under
 * the current one, a batch at a time, at most `ratePerSecond` blobs per second. When a scan
 * finds none left, the older generations are erased from the keyring (record and memory).
 *
 * Resumable by construction: progress is not a cursor but the key ids found — each step
 * scans for blobs whose envelope names another key id, so after a crash (or a restart) the
 * job simply continues with what is left. Each blob is swapped only if the cell still holds
 * the bytes read, so concurrent writes (already under the current key) win, CAS versions are
 * untouched, and every swap batch goes through the backend's ordinary write path (sqlite:
 * the group commit).
 *
 * Logs: one line when a run starts, one per `LOG_EVERY` blobs, one when generations are
 * erased; never a path or a key. Errors are logged and retried after a pause.
 */
import { outsideRequest, type Logger } from '../lib/index.js';
import type { KeyCustody } from './key-custody.js';

/** Default blobs re-sealed per second (SPIKE_NEXUS_REENCRYPT_RATE). */
export const DEFAULT_REENCRYPT_RATE = 500;
const MAX_BATCH = 100;
const LOG_EVERY = 10_000;
const RETRY_MS = 5_000;

/** What the job reports (metrics). */
export interface ReencryptProgress {
  /** Storage generations the keyring holds (1 = nothing to do). */
  generations: number;
  /** Blobs re-sealed by this process since it started. */
  rewritten: number;
  /** True while a run is under way. */
  running: boolean;
}

export interface ReencryptOptions {
  ratePerSecond?: number;
  logger?: Logger;
}

export class Reencryptor {
  readonly #custody: () => KeyCustody | null;
  readonly #rate: number;
  readonly #logger: Logger | undefined;
  #rewritten = 0;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #wake: (() => void) | null = null;

  /** `custody` returns the unlocked store's custody (null while locked or closed). */
  constructor(custody: () => KeyCustody | null, opts: ReencryptOptions = {}) {
    this.#custody = custody;
    this.#rate = opts.ratePerSecond ?? DEFAULT_REENCRYPT_RATE;
    this.#logger = opts.logger;
  }

  progress(): ReencryptProgress {
    const c = this.#custody();
    return { generations: c ? c.keyring.storage.ids().length : 0, rewritten: this.#rewritten, running: this.#running !== null };
  }

  /** Starts a run when older generations are held (idempotent; call after unlock and after a rotation). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const c = this.#custody();
    if (!c || c.keyring.storage.ids().length <= 1) return;
    // Background work: never under the deadline of a request that kicked it (a rotation, or a
    // rotation seen by another process), which on PostgreSQL would fail every later step.
    this.#running = outsideRequest(() => this.#run()).finally(() => {
      this.#running = null;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /**
   * Resolves when the current run (if any) ended; for shutdown and tests. A caller waiting here
   * keeps the process alive until then: the run's pauses use unref'd timers (a run alone never
   * holds a process open), so a process with nothing else pending would otherwise exit in the
   * middle of a pause, with this promise never settled.
   */
  async idle(): Promise<void> {
    if (!this.#running) return;
    const hold = setInterval(() => undefined, 60_000);
    try {
      while (this.#running) await this.#running;
    } finally {
      clearInterval(hold);
    }
  }

  /** Stops after the step in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.idle();
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = () => resolve();
      this.#timer = setTimeout(resolve, ms);
      this.#timer.unref?.();
    }).finally(() => {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#wake = null;
    });
  }

  async #run(): Promise<void> {
    const batch = Math.max(1, Math.min(MAX_BATCH, this.#rate));
    const started = this.#custody()?.keyring.storage.current;
    this.#logger?.info({ keyId: started }, 're-encryption started: blobs under older storage keys are re-sealed in the background');
    let sinceLog = 0;
    let warned = false;
    while (!this.#stopped) {
      const c = this.#custody();
      if (!c) return;
      try {
        const t0 = Date.now();
        const { found, written, failed } = await c.reencryptStep(batch);
        const now = c.keyring.storage.current;
        if (started !== undefined && now - started >= 2 && !warned) {
          // Each pass re-seals everything again under a newer key: the limit is too low for the store.
          warned = true;
          this.#logger?.warn({ keyId: now }, 're-encryption cannot finish: the storage key rotated again meanwhile; raise SPIKE_NEXUS_AEAD_SEAL_LIMIT above the number of stored records');
        }
        if (found === 0) {
          const erased = await c.eraseOlder();
          this.#logger?.info({ keyId: c.keyring.storage.current, erased: erased.length, rewritten: this.#rewritten },
            're-encryption done: older storage keys erased');
          return;
        }
        if (failed === found) {
          // Only records that fail their integrity check are left: keep the older key, stop until the next start.
          this.#logger?.error({ err: 'store_integrity', count: failed }, 're-encryption stopped: records under an older key fail their integrity check; the older key is kept');
          return;
        }
        this.#rewritten += written;
        sinceLog += written;
        if (sinceLog >= LOG_EVERY) {
          this.#logger?.info({ rewritten: this.#rewritten }, 're-encryption progress');
          sinceLog = 0;
        }
        const wait = Math.ceil((found * 1000) / this.#rate) - (Date.now() - t0);
        if (wait > 0) await this.#pause(wait);
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'error';
        if (code === 'store_closed' || code === 'store_locked') return;
        this.#logger?.warn({ err: code }, 're-encryption step failed; retrying');
        await this.#pause(RETRY_MS);
      }
    }
  }
}
