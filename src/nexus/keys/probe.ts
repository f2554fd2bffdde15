/**
 * The Keeper status probe (fast re-hydration): once a root key is installed, every
 * `intervalMs` (SPIKE_NEXUS_KEEPER_PROBE_INTERVAL, default 2 s) each Keeper is asked for its
 * status (`/v1/store/status`: epoch, id, anchor — never a share value; short timeout). A
 * Keeper that holds no share, or a share of another epoch or id than the current sharing
 * (it restarted empty, or a Bootstrap identity refilled it), gets its share pushed at once
 * (`pushTo`), so it holds it again within seconds instead of at the next periodic re-push.
 * `onStatus` lets the rollback anchor follow (anchor/pusher.ts). One round at a time; an
 * unreachable Keeper is only logged at debug (the periodic push warns about it).
 */
import { errInfo, type Logger } from '../../lib/index.js';
import type { KeeperClient, KeeperStatus } from '../../keeper/index.js';
import type { KeyState } from './state.js';

interface KeeperProbeOptions {
  peers: readonly string[];
  client: KeeperClient;
  keys: KeyState;
  logger: Logger;
  intervalMs: number;
  /** Deadline of one status call (default min(1500 ms, intervalMs)). */
  timeoutMs?: number;
  /** Sends Keeper `pos` its share now; true when acknowledged. */
  pushTo(pos: number): Promise<boolean>;
  /** Every status answer (e.g. the rollback anchor); must not throw. */
  onStatus?: (pos: number, st: KeeperStatus) => void;
}

/** Why a Keeper needs its share again, or undefined when it holds the current one. */
export function staleReason(st: KeeperStatus, pos: number, epoch: number): 'empty' | 'other_epoch' | 'other_id' | undefined {
  if (st.epoch === null) return 'empty';
  if (st.epoch !== epoch) return 'other_epoch';
  if (st.id !== null && st.id !== pos) return 'other_id';
  return undefined;
}

export class KeeperProbe {
  readonly #o: KeeperProbeOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;

  constructor(o: KeeperProbeOptions) {
    this.#o = o;
  }

  /** Starts probing once a key is installed. */
  start(): void {
    this.#o.keys.onReady(() => {
      if (this.#stopped || this.#timer) return;
      this.#timer = setInterval(() => this.probeNow(), this.#o.intervalMs);
      this.#timer.unref?.();
    });
  }

  /** One round now (skipped while one runs). */
  probeNow(): Promise<void> {
    this.#round ??= this.#probeAll().finally(() => { this.#round = undefined; });
    return this.#round;
  }

  async #probeAll(): Promise<void> {
    const { client, keys, logger } = this.#o;
    // Positions in the CURRENT sharing's Keeper list (share ids), as the re-push uses them.
    const peers = keys.sharing()?.peers ?? this.#o.peers;
    const timeout = this.#o.timeoutMs ?? Math.min(1500, this.#o.intervalMs);
    await Promise.all(peers.map(async (url, i) => {
      const pos = i + 1;
      let st: KeeperStatus;
      try {
        st = await client.status(url, timeout);
      } catch (e) {
        logger.debug({ keeperId: pos, reason: errInfo(e) }, 'keeper status probe failed');
        return;
      }
      if (this.#stopped) return;
      const sharing = keys.sharing();
      const why = sharing ? staleReason(st, pos, sharing.epoch) : undefined;
      if (why !== undefined) {
        logger.info({ keeperId: pos, reason: why }, 'keeper lacks its current share; pushing it now');
        const ok = await this.#o.pushTo(pos);
        if (ok) logger.info({ keeperId: pos }, 'keeper re-hydrated');
      }
      this.#o.onStatus?.(pos, st);
    }));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round?.catch(() => undefined);
  }
}
