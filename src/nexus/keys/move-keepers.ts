/**
 * The Keeper side of a sharing move (move.ts): phase one (every Keeper of the new list gets
 * its current share again and its pending share), the check right before the commit that
 * every Keeper still holds its new share, and phase two (the commit message) — each send with
 * bounded retries and backoff. Deciding (abandon, commit) stays with the move.
 */
import { KEY_TIMER_DEFAULTS } from '../../config/index.js';
import { wipeShare, type Share } from '../../crypto/index.js';
import { Backoff, errInfo, type Logger } from '../../lib/index.js';
import { KeeperCallError, keeperFailureFields, type KeeperClient } from '../../keeper/index.js';
import type { KeyState, SharingInfo } from './state.js';

/** How long the pre-commit status check waits for each Keeper. */
const CONFIRM_TIMEOUT_MS = 2000;

export interface MoveKeepersOptions {
  client: KeeperClient;
  keys: KeyState;
  /** Attempts per Keeper (default 6) and the backoff between them. */
  attempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export class MoveKeepers {
  readonly #o: MoveKeepersOptions;

  constructor(o: MoveKeepersOptions) {
    this.#o = o;
  }

  /**
   * Phase one, per Keeper of the new list, with retries. A Keeper of the current sharing is
   * (re)sent its OWN current share — the one at its position in the CURRENT list, never the
   * share of its new position, so no Keeper ever sees two shares of one sharing — and then
   * its pending share. A Keeper new to the sharing holds nothing worth keeping: it gets its
   * share of the new sharing directly (recovery matches it by epoch either way). Returns
   * unacked positions.
   */
  async pushPending(current: SharingInfo, next: SharingInfo, shares: readonly Share[], log: Logger): Promise<number[]> {
    const results = await Promise.all(next.peers!.map(async (url, i) => {
      const pos = i + 1;
      const ok = await this.#withRetries(log, pos, () => this.sendPending(current, next, shares[i]!, url, pos));
      return ok ? 0 : pos;
    }));
    return results.filter((p) => p !== 0);
  }

  /** One phase-one send to the Keeper at `pos` of the new list (see pushPending). */
  async sendPending(current: SharingInfo, next: SharingInfo, share: Share, url: string, pos: number): Promise<void> {
    const { client, keys } = this.#o;
    const curPos = (current.peers ?? next.peers!).indexOf(url) + 1;
    if (curPos === 0) {
      await client.contribute(url, { value: share.value, id: pos, epoch: next.epoch, commitments: next.commitments });
      return;
    }
    const old = keys.shareFor(curPos);
    try {
      await client.contribute(url, { value: old.value, id: curPos, epoch: current.epoch, commitments: current.commitments });
    } finally {
      wipeShare(old);
    }
    await client.contribute(url, { value: share.value, id: pos, epoch: next.epoch, commitments: next.commitments, pending: true });
  }

  /**
   * Right before the commit (or a rotation's store switch): every Keeper of the new list
   * still holds its share of `next`, pending or current. A Keeper that restarted empty after
   * acknowledging would otherwise be missing from the new sharing the store is about to
   * record (too many such restarts plus a Nexus crash would leave fewer than `t` shares).
   * Keepers that lost it are sent it again (with retries) and asked once more; returns the
   * positions still missing or silent (the caller abandons the move then).
   */
  async confirmHeld(current: SharingInfo, next: SharingInfo, shares: readonly Share[], log: Logger): Promise<number[]> {
    const missing = await this.#lacking(next);
    if (missing.length === 0) return missing;
    log.warn({ missing }, 'sharing move: a Keeper no longer holds its new share (restarted?); sending it again before the commit');
    await Promise.all(missing.map((pos) => this.#withRetries(log, pos, () => this.sendPending(current, next, shares[pos - 1]!, next.peers![pos - 1]!, pos))));
    return this.#lacking(next);
  }

  /** Positions of the new list whose Keeper holds no share of `next` (or does not answer). */
  async #lacking(next: SharingInfo): Promise<number[]> {
    return (await Promise.all(next.peers!.map(async (url, i) => {
      try {
        const st = await this.#o.client.status(url, CONFIRM_TIMEOUT_MS);
        return st.pending === next.epoch || st.epoch === next.epoch ? 0 : i + 1;
      } catch {
        return i + 1;
      }
    }))).filter((p) => p !== 0);
  }

  /** Phase two: the commit message (best effort; the periodic re-push completes it). */
  async pushCommit(next: SharingInfo, shares: readonly Share[], log: Logger): Promise<void> {
    const { client } = this.#o;
    await Promise.all(next.peers!.map(async (url, i) => {
      const pos = i + 1;
      const ok = await this.#withRetries(log, pos, () =>
        client.contribute(url, { value: shares[i]!.value, id: pos, epoch: next.epoch, commitments: next.commitments }));
      if (!ok) log.warn({ keeperId: pos }, 'sharing move: commit not acknowledged; the periodic re-push will complete it');
    }));
  }

  async #withRetries(log: Logger, pos: number, fn: () => Promise<void>): Promise<boolean> {
    const attempts = this.#o.attempts ?? 6;
    const backoff = new Backoff({ initialMs: this.#o.initialBackoffMs ?? KEY_TIMER_DEFAULTS.moveKeeperRetryInitialMs, maxMs: this.#o.maxBackoffMs ?? KEY_TIMER_DEFAULTS.moveKeeperRetryMaxMs, jitter: 'equal' });
    for (let a = 1; a <= attempts; a++) {
      try {
        await fn();
        return true;
      } catch (e) {
        log.warn({ keeperId: pos, attempt: a, reason: errInfo(e), ...keeperFailureFields(e) }, 'sharing move: keeper push failed');
        // Not one of the configured Keepers: no later attempt would send it anything either.
        if (e instanceof KeeperCallError && e.code === 'keeper_not_configured') return false;
        if (a < attempts) await new Promise((r) => setTimeout(r, Math.max(1, backoff.next())));
      }
    }
    return false;
  }
}
