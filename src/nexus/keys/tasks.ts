/**
 * When Nexus moves its sharing by itself (the operator's `refresh-shares` and `reshare`
 * commands are routes, routes/sharing.ts; `reshare` runs {@link reshareNow}):
 *  - at start-up, once the key is recovered: when SPIKE_NEXUS_KEEPER_PEERS /
 *    SHAMIR_SHARES / SHAMIR_THRESHOLD differ from the stored sharing, a reshare to the
 *    configured (n', t', Keepers). Recovery used the STORED sharing's threshold and Keeper
 *    list (kept in the sharing record), so the old Keepers are still reached. A record
 *    written before sharing moves has no Keeper list: the configured one is taken as it
 *    (a changed n or t is still detected; a changed list of the same length is not);
 *  - every SPIKE_NEXUS_SHARE_REFRESH_INTERVAL (off by default): a share refresh.
 * A failed move is logged and retried at the next interval (start-up reshare: after a
 * backoff, a few times); the current sharing stays in force meanwhile.
 */
import { errInfo, outsideRequest, type Logger } from '../../lib/index.js';
import { MoveError, type MoveTarget, type SharingMover } from './move.js';
import { MOVE_LEASE_BACKGROUND_WAIT_MS } from './move-lease.js';
import type { KeyState, SharingInfo } from './state.js';

export interface SharingTasksOptions {
  mover: SharingMover;
  keys: KeyState;
  logger: Logger;
  configured: MoveTarget;
  refreshIntervalMs: number;
  /** Delay between start-up reshare attempts (default 30 s). */
  retryMs?: number;
  /**
   * False while Nexus must not change the store or the Keepers (the start-up rollback check
   * still runs, or a detected rollback is not accepted yet): moves wait for it.
   */
  mayRun?: () => boolean;
}

/** How often a move held back by `mayRun` looks again. */
const GATE_POLL_MS = 1000;

const RESHARE_ATTEMPTS = 10;

/** The configured sharing differs from `s` (what a start-up reshare would change). */
export function differsFromConfig(s: SharingInfo, c: MoveTarget): boolean {
  const peers = s.peers ?? c.peers;
  return s.threshold !== c.threshold || s.shares !== c.shares || peers.length !== c.peers.length || peers.some((u, i) => u !== c.peers[i]);
}

/**
 * The operator's `reshare` command: the start-up Keeper set change, on demand (for instance
 * after the start-up attempts gave up while new Keepers were still down). When the stored
 * sharing already matches the configured (n, t, Keepers) nothing moves (`changed: false`):
 * a reshare to the same settings would be a share refresh, which has its own command, and
 * must not void the operator's recovery shards by surprise.
 */
export async function reshareNow(o: { mover: SharingMover; keys: KeyState; configured: MoveTarget; logger: Logger }): Promise<{ changed: boolean; sharing: SharingInfo }> {
  const current = o.keys.sharing();
  if (!o.keys.isReady() || !current) throw new MoveError('move_not_ready');
  if (!differsFromConfig(current, o.configured)) {
    o.logger.info({ epoch: current.epoch, threshold: current.threshold, shares: current.shares }, 'reshare requested: the stored sharing already matches the Keeper settings; nothing to change');
    return { changed: false, sharing: current };
  }
  o.logger.warn(
    { from: { threshold: current.threshold, shares: current.shares }, to: { threshold: o.configured.threshold, shares: o.configured.shares } },
    'reshare requested by the operator: moving the sharing to the configured Keepers, shares and threshold (same root key)',
  );
  return { changed: true, sharing: await o.mover.move('reshare', o.configured) };
}

export class SharingTasks {
  readonly #o: SharingTasksOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(opts: SharingTasksOptions) {
    this.#o = opts;
  }

  start(): void {
    let refreshing = false; // the key is installed again after a rotation elsewhere (../rejoin.ts): one timer
    this.#o.keys.onReady(() => {
      if (this.#stopped) return;
      this.#reshareIfChanged(1);
      if (this.#o.refreshIntervalMs > 0 && !refreshing) {
        refreshing = true;
        const t = setInterval(() => this.#refresh(), this.#o.refreshIntervalMs);
        t.unref?.();
        this.#timers.add(t);
      }
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
  }

  #reshareIfChanged(attempt: number): void {
    const { keys, configured, logger, mover } = this.#o;
    const current = keys.sharing();
    if (this.#stopped || !current || !differsFromConfig(current, configured)) return;
    if (this.#o.mayRun && !this.#o.mayRun()) {
      const t = setTimeout(() => { this.#timers.delete(t); this.#reshareIfChanged(attempt); }, GATE_POLL_MS);
      t.unref?.();
      this.#timers.add(t);
      return;
    }
    logger.warn(
      { from: { threshold: current.threshold, shares: current.shares }, to: { threshold: configured.threshold, shares: configured.shares }, attempt },
      'Keeper settings differ from the stored sharing: moving the sharing to the configured Keepers, shares and threshold (same root key)',
    );
    outsideRequest(() => {
      mover.move('reshare', configured, { leaseWaitMs: MOVE_LEASE_BACKGROUND_WAIT_MS }).catch((e: unknown) => {
        logger.error({ err: errInfo(e), attempt }, 'Keeper set change failed; the stored sharing stays in force');
        if (attempt >= RESHARE_ATTEMPTS || this.#stopped) return;
        const t = setTimeout(() => { this.#timers.delete(t); this.#reshareIfChanged(attempt + 1); }, this.#o.retryMs ?? 30_000);
        t.unref?.();
        this.#timers.add(t);
      });
    });
  }

  #refresh(): void {
    const { keys, logger, mover, configured } = this.#o;
    const current = keys.sharing();
    if (this.#stopped || !current || mover.running() || (this.#o.mayRun && !this.#o.mayRun())) return;
    logger.info({ epoch: current.epoch }, 'scheduled share refresh');
    const target = { threshold: current.threshold, shares: current.shares, peers: current.peers ?? configured.peers };
    mover.move('refresh', target, { leaseWaitMs: MOVE_LEASE_BACKGROUND_WAIT_MS }).catch((e: unknown) => logger.error({ err: errInfo(e) }, 'scheduled share refresh failed; retried at the next interval'));
  }
}
