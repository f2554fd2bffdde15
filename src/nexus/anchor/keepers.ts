/**
 * What the rollback guard (guard.ts) asks the Keepers: their anchors at the start-up check
 * (asked again until enough have answered), and, before a stored anchor this process cannot
 * verify is called a rotation elsewhere, whether some Keeper moved past this process's
 * sharing epoch. The configured Keepers first, then those of the stored sharing.
 */
import { KEY_TIMER_DEFAULTS } from '../../config/index.js';
import type { KeeperClient } from '../../keeper/index.js';
import { createLogThrottle, errInfo, type Logger } from '../../lib/index.js';
import type { KeyState } from '../keys/state.js';
import type { AnchorKey } from './mac.js';

/**
 * How long the start-up check listens for Keepers that have not answered yet: every Keeper
 * within {@link CHECK_WINDOW_MS} (SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW sets it); past it, it decides once at least the sharing's threshold
 * answered (they just gave their shares); a Keeper set that stays silent longer than
 * {@link CHECK_MAX_MS} (SPIKE_NEXUS_ROLLBACK_CHECK_MAX) is decided on what answered (a WARN
 * line names the silent ones): after an operator restore with every Keeper gone, on nothing.
 */
const CHECK_WINDOW_MS = KEY_TIMER_DEFAULTS.rollbackCheckWindowMs;
const CHECK_MAX_MS = KEY_TIMER_DEFAULTS.rollbackCheckMaxMs;
/** Per Keeper status call (also the anchor pusher's). */
export const STATUS_TIMEOUT_MS = 1500;
const RETRY_MS = 250;

interface KeeperAnchorsOptions {
  client: KeeperClient;
  peers: readonly string[];
  keys: KeyState;
  logger: Logger;
  /** The start-up check's wait for every Keeper (default {@link CHECK_WINDOW_MS}). */
  checkWindowMs?: number;
  /** The start-up check's longest wait for a threshold of Keepers (default {@link CHECK_MAX_MS}). */
  checkMaxMs?: number;
}

export class KeeperAnchors {
  readonly #o: KeeperAnchorsOptions;

  /** One line per Keeper per minute while evidence cannot reach it (it is handed over every few seconds). */
  readonly #throttle;

  constructor(o: KeeperAnchorsOptions) {
    this.#o = o;
    this.#throttle = createLogThrottle(o.logger, { intervalMs: 60_000 });
  }

  /**
   * Each Keeper's anchor: verified counter, `invalid`, or undefined (none / no answer); and the
   * record of each verified one.
   */
  async collect(key: AnchorKey, stopped: () => boolean): Promise<{ counters: (bigint | 'invalid' | undefined)[]; records: (Uint8Array | undefined)[] }> {
    const { client } = this.#o;
    // The configured Keepers are waited for. The stored sharing's Keepers are asked too in the
    // same rounds (after a Keeper set change in the settings the anchors are on them; they
    // just gave their shares, so they answer), but not waited for: after a restore on a new
    // machine they are gone.
    const configured = this.#o.peers;
    const peers = this.allPeers();
    const out: (bigint | 'invalid' | undefined)[] = peers.map(() => undefined);
    const records: (Uint8Array | undefined)[] = peers.map(() => undefined);
    const heard = peers.map(() => false);
    const started = Date.now();
    const need = Math.min(configured.length, this.#o.keys.sharing()?.threshold ?? configured.length);
    const window = this.#o.checkWindowMs ?? CHECK_WINDOW_MS;
    const longest = this.#o.checkMaxMs ?? CHECK_MAX_MS;
    while (!stopped()) {
      await Promise.all(peers.map(async (url, i) => {
        if (heard[i]) return;
        try {
          const st = await client.status(url, STATUS_TIMEOUT_MS);
          heard[i] = true;
          if (st.anchor !== undefined) out[i] = key.open(st.anchor) ?? 'invalid';
          if (typeof out[i] === 'bigint') records[i] = st.anchor;
        } catch {
          // unreachable or not answering: asked again in the next round
        }
      }));
      const waited = Date.now() - started;
      const answered = heard.slice(0, configured.length).filter(Boolean).length;
      if (answered === configured.length || (waited >= window && answered >= need) || waited >= longest) break;
      await new Promise((r) => setTimeout(r, RETRY_MS).unref());
    }
    const silent = heard.slice(0, configured.length).flatMap((h, i) => (h ? [] : [peers[i]!]));
    if (silent.length > 0) this.#o.logger.warn({ keepers: silent }, 'rollback check: some keepers did not answer; decided on the others');
    return { counters: out, records };
  }

  /**
   * Whether some Keeper holds (or is being given) a share of a sharing newer than `epoch`: a
   * rotation moves the Keepers to a new epoch (pending before the switch, current after).
   */
  async movedPast(epoch: number): Promise<boolean> {
    // Only configured Keepers are believed here: a Keeper that only the stored sharing names
    // (an address from the database) must not turn a rollback alarm into "rotated elsewhere".
    const answers = await Promise.all(this.#o.peers.map((url) => this.#o.client.status(url, STATUS_TIMEOUT_MS).catch(() => undefined)));
    return answers.some((st) => st !== undefined && ((st.epoch ?? 0) > epoch || (st.pending ?? 0) > epoch));
  }

  /**
   * A rollback found while serving: each configured Keeper whose anchor verifies below
   * `counter` (or that holds none) is given `counter` sealed, once `after` settled (the
   * pusher's last round), so the evidence outlives this process and reaches every other
   * process on the store: their Keeper status answers show the store behind it (witness.ts), and a
   * restart's check refuses. A Keeper whose anchor does not verify here (another root's) is
   * left alone. Never throws.
   */
  async raise(key: AnchorKey, counter: bigint, o: { after?: Promise<void> | undefined; stopped: () => boolean }): Promise<void> {
    if (counter === 0n) return;
    const record = key.seal(counter); // before any wait: the key is wiped when the guard stops
    await o.after?.catch(() => undefined);
    let raised = 0;
    await Promise.all(this.#o.peers.map(async (url) => {
      try {
        if (o.stopped()) return;
        const st = await this.#o.client.status(url, STATUS_TIMEOUT_MS);
        const theirs = st.anchor === undefined ? 0n : key.open(st.anchor);
        if (theirs === undefined || theirs >= counter || o.stopped()) return;
        await this.#o.client.putAnchor(url, record, STATUS_TIMEOUT_MS);
        raised++;
      } catch (e) {
        this.#throttle.warn(`evidence_${url}`, { keeper: url, reason: errInfo(e) }, 'could not hand a keeper the evidence of the rollback');
      }
    }));
    if (raised > 0) this.#o.logger.info({ keepers: raised, counter: Number(counter) }, 'the keepers hold the rollback evidence');
  }

  /** The highest anchor that verifies under `key` among every Keeper asked at start-up, now (one round; 0: none). */
  async highest(key: AnchorKey): Promise<bigint> {
    const answers = await Promise.all(this.allPeers().map((url) => this.#o.client.status(url, STATUS_TIMEOUT_MS).catch(() => undefined)));
    return answers.reduce((max, st) => {
      const c = st?.anchor === undefined ? undefined : key.open(st.anchor);
      return c !== undefined && c > max ? c : max;
    }, 0n);
  }

  /** The configured Keepers first, then those of the stored sharing (after a Keeper set change). */
  allPeers(): string[] {
    return [...new Set([...this.#o.peers, ...(this.#o.keys.sharing()?.peers ?? [])])];
  }
}
