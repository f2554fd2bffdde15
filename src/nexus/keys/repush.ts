/**
 * The periodic share re-push: once a root key is installed (by Keeper recovery or by
 * operator restore), every Keeper is sent its own share of the current sharing, computed
 * from the basis by interpolation, right away and then every `intervalMs`, so a Keeper that
 * restarted empty re-hydrates (the status probe, probe.ts, calls `pushTo` for one Keeper
 * within seconds; this round is the safety net). Failures are logged and counted, never
 * thrown; each computed share is wiped after its send.
 */
import type { AuditEvents } from '../audit.js';
import { wipeShare, type Share } from '../../crypto/index.js';
import { errInfo, type Logger } from '../../lib/index.js';
import { KeeperCallError, keeperFailureFields, type KeeperClient } from '../../keeper/index.js';
import type { KeyState, SharingInfo } from './state.js';

/** Metrics hook (src/ops): Keepers by configured index 1..n; must not throw. */
export interface KeeperObserver {
  keeperContact(index: number): void;
  pushResult(index: number, ok: boolean): void;
  sharesCollected(n: number): void;
}

export interface SharePusherOptions {
  peers: readonly string[];
  client: KeeperClient;
  keys: KeyState;
  logger: Logger;
  intervalMs: number;
  observer?: KeeperObserver;
  audit?: AuditEvents;
  /** Called after a Keeper acknowledged its share (the rollback anchor follows it); must not throw. */
  onPushed?: (pos: number) => void;
  /** Runs before each round; false skips the round (e.g. the in-memory sharing is stale: resync.ts). */
  beforePush?: () => Promise<boolean>;
}

export class SharePusher {
  readonly #o: SharePusherOptions;
  #timer: NodeJS.Timeout | undefined;
  #pushing: Promise<void> | undefined;
  /** Single-Keeper pushes in flight (the status probe's `pushTo`). */
  readonly #single = new Set<Promise<boolean>>();
  #stopped = false;
  /** Between `pause` and the next `start`: no share goes out, from the round or from `pushTo`. */
  #paused = false;
  /** Keeper URLs outside the configuration already logged (see `#pushOne`). */
  readonly #notConfiguredSaid = new Set<string>();

  constructor(opts: SharePusherOptions) {
    this.#o = opts;
  }

  /** Pushes now and then every `intervalMs` until stopped. */
  start(): void {
    if (this.#stopped || this.#timer) return;
    this.#paused = false;
    void this.pushNow().catch(() => undefined);
    this.#timer = setInterval(() => void this.pushNow().catch(() => undefined), this.#o.intervalMs);
    this.#timer.unref?.();
  }

  /** Sends every Keeper its share of the current sharing (one round at a time). */
  pushNow(): Promise<void> {
    if (this.#pushing) return this.#pushing;
    this.#pushing = this.#pushAll().finally(() => { this.#pushing = undefined; });
    return this.#pushing;
  }

  /**
   * Stops the timer, refuses every push (rounds and the status probe's `pushTo`) until `start`,
   * and waits for the pushes in flight (the root key was rotated elsewhere: ../rejoin.ts).
   */
  async pause(): Promise<void> {
    this.#paused = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([this.#pushing?.catch(() => undefined), ...this.#single]);
  }

  /** Stops the timer and waits for a round in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#pushing?.catch(() => undefined);
  }

  /**
   * Sends Keeper `pos` (1-based) its share now, outside the periodic round (the status probe
   * found it empty or stale). Resolves true when the Keeper acknowledged; never throws.
   */
  /**
   * The Keepers by position: the CURRENT sharing's list (a Keeper's share id is its position
   * there; after a Keeper set change the configured list may order them differently), else
   * the configured one (a sharing recorded before the list was stored).
   */
  peers(): readonly string[] {
    return this.#o.keys.sharing()?.peers ?? this.#o.peers;
  }

  pushTo(pos: number): Promise<boolean> {
    const p = this.#pushTo(pos);
    this.#single.add(p);
    void p.finally(() => this.#single.delete(p));
    return p;
  }

  async #pushTo(pos: number): Promise<boolean> {
    const { keys, beforePush } = this.#o;
    const url = this.peers()[pos - 1];
    if (!keys.isReady() || this.#stopped || this.#paused || url === undefined) return false;
    if (beforePush && !(await beforePush().catch(() => false))) return false;
    const sharing = keys.sharing();
    if (!sharing || this.#stopped || this.#paused) return false;
    return this.#pushOne(url, pos, sharing);
  }

  async #pushAll(): Promise<void> {
    const { keys, beforePush } = this.#o;
    if (!keys.isReady() || this.#stopped || this.#paused) return;
    if (beforePush && !(await beforePush().catch(() => false))) return;
    const sharing = keys.sharing();
    if (!sharing || this.#stopped || this.#paused) return;
    await Promise.all(this.peers().map((url, i) => this.#pushOne(url, i + 1, sharing)));
  }

  async #pushOne(url: string, pos: number, sharing: SharingInfo): Promise<boolean> {
    const { keys, client, logger, observer, audit } = this.#o;
    if (!client.mayReceiveShares(url)) {
      // The current sharing names a Keeper this Nexus is not configured with (the list changed
      // and the start-up reshare has not moved it yet, or the record was put back): no share
      // goes there. Said once per URL, not every round.
      if (!this.#notConfiguredSaid.has(url)) {
        this.#notConfiguredSaid.add(url);
        logger.warn({ keeper: url, keeperId: pos, epoch: sharing.epoch }, 'the current sharing names a Keeper outside SPIKE_NEXUS_KEEPER_PEERS: no share is sent to it');
      }
      return false;
    }
    let share: Share;
    try {
      share = keys.shareFor(pos);
    } catch (err) {
      logger.error({ keeperId: pos, reason: errInfo(err) }, 'cannot compute the share for a keeper');
      return false;
    }
    try {
      await client.contribute(url, { value: share.value, id: pos, epoch: sharing.epoch, commitments: sharing.commitments });
      logger.debug({ keeper: url, keeperId: pos }, 'share pushed to keeper');
      observer?.keeperContact(pos);
      observer?.pushResult(pos, true);
      audit?.event('share.pushed', { keeper: pos, epoch: sharing.epoch, ok: true });
      this.#o.onPushed?.(pos);
      return true;
    } catch (err) {
      const status = err instanceof KeeperCallError ? err.status : undefined;
      observer?.pushResult(pos, false);
      audit?.event('share.pushed', { keeper: pos, epoch: sharing.epoch, ok: false });
      logger.warn({ keeper: url, keeperId: pos, reason: errInfo(err), ...keeperFailureFields(err), ...(status !== undefined ? { status } : {}) }, 'share push failed');
      return false;
    } finally {
      wipeShare(share);
    }
  }
}
