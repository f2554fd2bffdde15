/**
 * The rollback anchor's next record, as the store asks for it (the store's `AnchorSealer`):
 * the counter continues from the stored record's MAC-VERIFIED counter only, plus one (at
 * least `min`), sealed under the anchor key.
 *
 * ATTACK planted anchor counter: the store cannot verify the record, so a record planted or
 * damaged in the database (a huge counter with any MAC) must never be where the counter
 * continues from — before, a planted counter near the top of the range made every later
 * write fail (the next counter did not fit), and a plausible one was laundered into a
 * validly sealed record. A record that does not verify is not trusted: the chain continues
 * from the highest counter THIS process verified or sealed (`floor`), replaces the record
 * with a verified one, and raises an ERROR alarm `anchor_record_unverified` (at most once a
 * minute; also when the record vanished after this process had seen one). Writes go on; the start-up check (guard.ts) counts such a record as 0, so Keepers
 * holding a verified anchor above it make Nexus refuse to serve.
 *
 * After a root-key rotation the stored record is sealed under the OLD key: `known` names that
 * one record and its counter (verified under the old key), so the re-key is not an alarm.
 */
import type { Logger } from '../../lib/index.js';
import { MAX_ANCHOR_COUNTER, type AnchorSealer } from '../../store/index.js';
import type { AnchorKey } from './mac.js';

const ALARM_INTERVAL_MS = 60_000;

export interface AnchorChainOptions {
  key: AnchorKey;
  logger: Logger;
  /** The highest counter known to be genuine (the start-up check's verified store counter). */
  floor: bigint;
  /** One record to accept as `counter` although it does not verify under `key` (a rotation's re-key). */
  known?: { record: Uint8Array; counter: bigint };
}

export class AnchorChain {
  readonly #key: AnchorKey;
  readonly #logger: Logger;
  readonly #known: { record: Buffer; counter: bigint } | undefined;
  #floor: bigint;
  #alarmAt = 0;

  constructor(o: AnchorChainOptions) {
    this.#key = o.key;
    this.#logger = o.logger;
    this.#floor = o.floor;
    this.#known = o.known ? { record: Buffer.from(o.known.record), counter: o.known.counter } : undefined;
  }

  /** The highest counter this chain verified or sealed. */
  get floor(): bigint {
    return this.#floor;
  }

  readonly seal: AnchorSealer = (stored, min) => {
    let next = this.#base(stored) + 1n;
    if (next < min) next = min;
    if (next > MAX_ANCHOR_COUNTER) next = MAX_ANCHOR_COUNTER; // 2^53 batches: never reached in practice; never fail a write for it
    if (next > this.#floor) this.#floor = next;
    return this.#key.seal(next);
  };

  /** The counter the stored record proves, or the floor when it proves nothing. */
  #base(stored: Uint8Array | null): bigint {
    if (stored === null && this.#floor === 0n) return 0n; // a store that never had a record
    const verified = this.#key.open(stored);
    if (verified !== undefined) {
      if (verified > this.#floor) this.#floor = verified;
      return verified;
    }
    if (stored !== null && this.#known?.record.equals(stored)) return this.#known.counter;
    const now = Date.now();
    if (now - this.#alarmAt >= ALARM_INTERVAL_MS) {
      this.#alarmAt = now;
      this.#logger.error({ alarm: 'anchor_record_unverified', continuingFrom: Number(this.#floor) },
        'the store\'s rollback anchor record does not verify (tampered, damaged or from another root key): it is not trusted; '
        + 'the counter continues from the last verified value and the record is replaced');
    }
    return this.#floor;
  }
}
