/**
 * Root-key recovery from Keepers, then the periodic share re-push (D5, D6; described in
 * docs/design/share-lifecycle.md, § 3 and § 4).
 *
 * Recovery: poll every Keeper concurrently; verify each share against the stored
 * commitments (or, on the very first start, against the commitments the Keeper received
 * from Bootstrap, grouping Keepers by sharing) BEFORE it is used; as soon as `threshold`
 * verified shares of one sharing are in, rebuild the key and hand it to `adoptKey`
 * (key-check record; both in recovery-shares.ts). Faulty Keepers (bad share, wrong encoding, oversized or slow reply)
 * are logged and skipped. Between passes: capped exponential backoff with equal jitter
 * (src/lib/backoff.ts). Verified shares are kept across passes (they cannot go bad), so the
 * threshold need not be reachable in one pass.
 *
 * While no key is installed, one WARN line every `notReadyLogIntervalMs` (default 30 s,
 * whatever the backoff) says so: have/need, which Keepers (by configured position, 1-based)
 * answered with a verified share, held none, could not be reached or sent a faulty share,
 * and what the operator can do. The per-pass details stay at info.
 *
 * Re-push: once a key is installed (by recovery or by operator restore), the
 * {@link SharePusher} (repush.ts) takes over.
 */
import type { AuditEvents } from '../audit.js';
import { Backoff, errInfo, type Logger } from '../../lib/index.js';
import type { Store } from '../../store/index.js';
import { keeperFailureFields, type KeeperClient } from '../../keeper/index.js';
import { SharePusher, type KeeperObserver } from './repush.js';
import { loadSharing } from './sharing.js';
import { loadPending } from './pending.js';
import { resyncSharing } from './resync.js';
import { pollList, type KnownSharings } from './recovery-verify.js';
import { VerifiedShares } from './recovery-shares.js';
import type { KeyState } from './state.js';

interface KeeperSyncOptions {
  peers: readonly string[];
  threshold: number;
  shares: number;
  client: KeeperClient;
  store: Store;
  keys: KeyState;
  logger: Logger;
  initialBackoffMs?: number;
  maxBackoffMs: number;
  pushIntervalMs: number;
  /** Metrics hook (src/ops): Keepers by configured index 1..n; must not throw. */
  observer?: KeeperObserver;
  /** Audit lifecycle events (key recovered, share re-push results). */
  audit?: AuditEvents;
  onPushed?: (pos: number) => void; // after a Keeper acknowledged its share (SharePusherOptions.onPushed)
  /** Period of the "not ready" WARN line while no key is installed (default 30 s). */
  notReadyLogIntervalMs?: number;
  /** Adopt a sharing record written before tags (SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING; sharing.ts). */
  acceptUntaggedSharing?: boolean;
}

/** What a Keeper gave in the last pass (`share`: its verified share is held). */
type KeeperAnswer = 'share' | 'no_share' | 'unreachable' | 'faulty';

const NOT_READY_LOG_INTERVAL_MS = 30_000;

export class KeeperSync {
  readonly #o: KeeperSyncOptions;
  readonly #shares: VerifiedShares;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #backoff: Backoff;
  readonly #pusher: SharePusher;
  #notReadyTimer: NodeJS.Timeout | undefined;
  readonly #answers = new Map<number, KeeperAnswer>();
  /** Whether a sharing record is stored (false: Nexus was never bootstrapped); undefined before the first pass. */
  #bootstrapped: boolean | undefined;
  #need: number;
  /** The sharings the last pass knew of (stored current, stored pending, configured). */
  #known: KnownSharings | undefined;
  #startedAt = Date.now();

  constructor(opts: KeeperSyncOptions) {
    this.#o = opts;
    this.#shares = new VerifiedShares(opts);
    this.#backoff = new Backoff({ initialMs: opts.initialBackoffMs ?? 500, maxMs: opts.maxBackoffMs, jitter: 'equal' });
    this.#need = opts.threshold;
    this.#pusher = new SharePusher({
      peers: opts.peers, client: opts.client, keys: opts.keys, logger: opts.logger, intervalMs: opts.pushIntervalMs,
      ...(opts.observer ? { observer: opts.observer } : {}),
      ...(opts.audit ? { audit: opts.audit } : {}), ...(opts.onPushed ? { onPushed: opts.onPushed } : {}),
      beforePush: async () => (await resyncSharing({
        store: opts.store, keys: opts.keys, client: opts.client, peers: opts.peers, logger: opts.logger, ...(opts.audit ? { audit: opts.audit } : {}),
      })) !== 'failed',
    });
  }

  /** Starts recovery (unless a key is already installed) and, once ready, re-pushing. */
  start(): void {
    this.#o.keys.onReady(() => this.#onReady());
    if (!this.#o.keys.isReady()) this.#recover();
  }

  #recover(): void {
    this.#schedule(0);
    this.#notReadyTimer = setInterval(() => this.#warnNotReady(), this.#o.notReadyLogIntervalMs ?? NOT_READY_LOG_INTERVAL_MS);
    this.#notReadyTimer.unref?.();
  }

  /** Pauses the re-push (another process rotated the root key: ../rejoin.ts); waits for a round in flight. */
  pauseRepush(): Promise<void> {
    return this.#pusher.pause();
  }

  /**
   * Recovers again as at start-up, with its backoff, once the caller has dropped the key
   * (../rejoin.ts); the re-push resumes when the new key is in. No-op while a key is held.
   */
  recoverAgain(): void {
    if (this.#stopped || this.#o.keys.isReady() || this.#timer !== undefined) return;
    this.#shares.wipe();
    this.#answers.clear();
    this.#backoff.reset();
    this.#startedAt = Date.now();
    this.#recover();
  }

  /** Keeper positions (1-based) by what they gave in the last pass; `share` includes shares kept from earlier passes. */
  status(): { have: number; need: number; bootstrapped: boolean | undefined; keepers: Record<KeeperAnswer, number[]> } {
    const best = this.#shares.best();
    const keepers: Record<KeeperAnswer, number[]> = { share: [], no_share: [], unreachable: [], faulty: [] };
    for (let pos = 1; pos <= this.#o.peers.length; pos++) {
      if (best?.shares.has(pos)) keepers.share.push(pos);
      else {
        const a = this.#answers.get(pos);
        if (a !== undefined) keepers[a === 'share' ? 'faulty' : a].push(pos);
      }
    }
    return { have: best?.shares.size ?? 0, need: best?.sharing.threshold ?? this.#need, bootstrapped: this.#bootstrapped, keepers };
  }

  /** The steady "not ready" WARN line (see the module doc). */
  #warnNotReady(): void {
    if (this.#stopped || this.#o.keys.isReady()) {
      if (this.#notReadyTimer) clearInterval(this.#notReadyTimer);
      this.#notReadyTimer = undefined;
      return;
    }
    const st = this.status();
    const k = st.keepers;
    const list = (xs: number[]): string => (xs.length === 0 ? 'none' : xs.join(','));
    const parts = [`answered with a share: ${list(k.share)}`];
    if (k.no_share.length > 0) parts.push(`no share: ${list(k.no_share)}`);
    if (k.unreachable.length > 0) parts.push(`unreachable: ${list(k.unreachable)}`);
    if (k.faulty.length > 0) parts.push(`faulty share: ${list(k.faulty)}`);
    const advice = st.bootstrapped === false
      ? 'if this is a new deployment, run SPIKE Bootstrap; otherwise start the missing Keepers'
      : 'start the missing Keepers (they get their shares back from Nexus once it is ready), or unseal with `spike operator restore` and the recovery shards';
    this.#o.logger.warn(
      {
        event: 'not_ready', have: st.have, need: st.need, keepers: this.#o.peers.length,
        answered: k.share, noShare: k.no_share, unreachable: k.unreachable, faulty: k.faulty,
        waitingMs: Date.now() - this.#startedAt,
      },
      `Nexus not ready: ${st.have} of ${st.need} needed Keeper shares (keepers ${parts.join('; ')}); ${advice}`,
    );
  }

  /**
   * Runs a recovery pass now instead of waiting out the backoff (Bootstrap's verify probe
   * calls this: it has just delivered the shares). The backoff starts over.
   */
  nudge(): void {
    if (this.#stopped || this.#o.keys.isReady() || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#backoff.reset();
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#notReadyTimer) clearInterval(this.#notReadyTimer);
    this.#shares.wipe();
    await this.#pusher.stop();
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#pass().then(
        (done) => { if (!done) this.#schedule(this.#nextDelay()); },
        (err: unknown) => {
          this.#o.logger.error({ err: errInfo(err) }, 'recovery pass failed');
          this.#schedule(this.#nextDelay());
        },
      );
    }, delayMs);
    this.#timer.unref?.();
  }

  #nextDelay(): number {
    return Math.max(1, this.#backoff.next());
  }

  /**
   * One recovery pass; resolves true when a key is installed. Shares are taken as they
   * arrive: as soon as one sharing has `threshold` verified shares the key is rebuilt,
   * without waiting for slow or silent Keepers (FI-06).
   */
  async #pass(): Promise<boolean> {
    const { keys, client, logger, store } = this.#o;
    if (keys.isReady()) return true;
    const stored = await loadSharing(store);
    const known: KnownSharings = {
      stored, pending: stored ? await loadPending(store, stored.epoch) : undefined,
      configured: { threshold: this.#o.threshold, shares: this.#o.shares, peers: this.#o.peers },
    };
    this.#known = known;
    this.#bootstrapped = stored !== undefined;
    this.#need = stored?.threshold ?? this.#o.threshold;
    const peers = pollList(known);
    let chain: Promise<boolean> = Promise.resolve(false);
    let installed = false;
    await new Promise<void>((resolve) => {
      let waiting = peers.length;
      if (waiting === 0) resolve();
      peers.forEach((url, i) => {
        client.fetchShare(url).then(
          (w) => {
            this.#o.observer?.keeperContact(i + 1);
            this.#answers.set(i + 1, this.#shares.file(i + 1, url, w, known, this.#o.keys.isReady() || this.#stopped) ? 'share' : 'faulty');
          },
          (err: unknown) => {
            // An empty Keeper (400 "no shard") is normal at start-up and after a restart.
            if ((err as { status?: number }).status === 400) {
              this.#answers.set(i + 1, 'no_share');
              logger.info({ keeper: url, keeperId: i + 1 }, 'keeper holds no share yet');
            } else {
              this.#answers.set(i + 1, 'unreachable');
              logger.warn({ keeper: url, keeperId: i + 1, reason: errInfo(err), ...keeperFailureFields(err) }, 'keeper share unavailable');
            }
          },
        ).finally(() => {
          chain = chain.then((ok) => ok || this.#shares.combine(this.#known)).then((ok) => {
            if (ok && !installed) {
              installed = true;
              resolve();
            }
            return ok;
          });
          chain = chain.catch((err: unknown) => {
            logger.error({ err: errInfo(err) }, 'recovery step failed');
            return false;
          });
          void chain.finally(() => { if (--waiting === 0) resolve(); });
        });
      });
    });
    if (installed || (await chain)) return true;
    // Per pass at info; the steady WARN line comes from #warnNotReady.
    const st = this.status();
    this.#o.observer?.sharesCollected(st.have);
    logger.info({ have: st.have, need: st.need }, 'not enough verified keeper shares yet');
    return false;
  }

  #onReady(): void {
    if (this.#notReadyTimer) clearInterval(this.#notReadyTimer);
    this.#notReadyTimer = undefined;
    if (this.#stopped) return;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#shares.wipe();
    this.#pusher.start();
  }

  /** Sends every Keeper its share of the current sharing now; failures are logged, not thrown. */
  pushNow(): Promise<void> {
    return this.#pusher.pushNow();
  }

  /** Sends Keeper `pos` (1-based) its share now (status probe); true when acknowledged. */
  pushTo(pos: number): Promise<boolean> {
    return this.#pusher.pushTo(pos);
  }
}

