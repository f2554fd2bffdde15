/**
 * Rollback detection at start-up and while serving, and the operator's way out
 * (docs/key-lifecycle.md).
 *
 * Start-up, once the root key is in: every Keeper's anchor (`/v1/store/status`, asked again
 * until enough answered: keepers.ts), then the store's, verified (mac.ts) and decided
 * (decide.ts). Passed: the store's counter is armed (it moves with every write) and the
 * anchor pusher starts. Failed: not ready — readiness names `rollback`, gated requests get 503
 * `state_rollback_detected`, one ERROR line, an audit event, a metric, the Keepers handed
 * evidence instead of the store's anchor — until `accept()` (`spike operator
 * accept-rollback`) moves the store's counter above every anchor seen. While serving, the same refusal when the store's record goes back, vanishes or
 * stops verifying (sealer.ts, at writes and every RECHECK_MS) or falls behind a Keeper's
 * anchor; the Keepers are then handed evidence far above every counter known here, so every
 * process on the store and a restart refuse too, and a refused process serves again once
 * another one's accept re-anchored the store above it (witness.ts).
 * States: `checking` → `serving` | `refused` → (accept) `serving`; `serving` → `stale` when
 * another process rotated the root key (its records do not verify here; no rollback): not
 * ready, no alarm, until replaced (a worker) or rejoined with the new key (src/nexus/rejoin.ts).
 */
import { ApiError } from '../../protocol/index.js';
import { errInfo } from '../../lib/index.js';
import type { KeeperStatus } from '../../keeper/index.js';
import { ALARM_TEXT, type AlarmCause, type RollbackVerdict } from './decide.js';
import { AnchorKey } from './mac.js';
import { AnchorPusher } from './pusher.js';
import { AnchorChain } from './sealer.js';
import { KeeperAnchors, STATUS_TIMEOUT_MS } from './keepers.js';
import { farAbove, KeeperWitness } from './witness.js';
import type { RollbackGuardOptions } from './guard-options.js';
import { checkAtStartup, reportAtStartup } from './startup-check.js';

/** Wire code of a request refused while a rollback is unaccepted (503). */
export const ROLLBACK_ERR = 'state_rollback_detected';
/**
 * While serving, the stored anchor is also read and checked this often, not only at writes:
 * a store put back under a Nexus that only reads (or whose every write is refused) is caught
 * within this time.
 */
const RECHECK_MS = 5000;

export type RollbackState = 'checking' | 'serving' | 'refused' | 'stale';

export class RollbackGuard {
  readonly #o: RollbackGuardOptions;
  readonly #keepers: KeeperAnchors;
  #state: RollbackState = 'checking';
  #key: AnchorKey | undefined;
  /** The store's sealer: continues from verified counters only (sealer.ts). */
  #chain: AnchorChain | undefined;
  /** The previous root's anchor key after a rotation (records under it still verify). */
  #previous: AnchorKey | undefined;
  #pusher: AnchorPusher | undefined;
  #verdict: RollbackVerdict | undefined;
  #stopped = false;
  #recheck: NodeJS.Timeout | undefined;
  /**
   * The highest counter this process read back from the store before {@link dropKeys} (a
   * rejoin): the store's counter only moves forward (a rotation elsewhere included), so the
   * check after the rejoin refuses a store below it, as the running chain would have.
   */
  #seen = 0n;
  /** Set by {@link dropKeys}: a record sealed under the dropped key (see `start`). */
  #dropped: Uint8Array | undefined;
  /** The pusher's stop after a refusal (the evidence is handed over once it is done). */
  #pusherStopped: Promise<void> | undefined;
  readonly #witness: KeeperWitness;
  /** Refused: an accept elsewhere moves the store above this (tick). */
  #refusedAt = 0n;
  #ticking = false;
  readonly #notRefused = (): boolean => this.#stopped || this.#state !== 'refused';

  constructor(o: RollbackGuardOptions) {
    this.#o = o;
    this.#keepers = new KeeperAnchors(o);
    this.#witness = new KeeperWitness({
      servingChain: () => (this.#state === 'serving' ? this.#chain : undefined),
      read: () => this.#o.anchor.read(),
      open: (record) => this.#key?.open(record) ?? this.#previous?.open(record),
      behind: (storeCounter, keeperCounter) => this.#refuseAtRuntime('behind_keepers', storeCounter, keeperCounter),
      recorded: (counters) => this.#o.anchor.recorded(counters),
      diverged: (counter) => this.#refuseAtRuntime('diverged', counter),
    }, this.#keepers, o.recheckMs ?? RECHECK_MS);
  }

  get state(): RollbackState {
    return this.#state;
  }

  /** True once the check passed (or the rollback was accepted). */
  serving(): boolean {
    return this.#state === 'serving';
  }

  /** The readiness cause while not serving. */
  readinessCause(): string | undefined {
    if (this.#state === 'refused') return 'rollback';
    if (this.#state === 'stale') return 'root_rotated_elsewhere';
    if (this.#state === 'checking' && this.#o.keys.isReady()) return 'rollback_check';
    return undefined;
  }

  /** The error a gated request gets while refused (undefined: the usual not-ready). */
  refusal(): ApiError | undefined {
    if (this.#state !== 'refused') return undefined;
    return new ApiError(ROLLBACK_ERR, 'state rollback detected: the store went back (older than the keepers\' anchor, or another history); an operator must run `spike operator accept-rollback`', { status: 503, expose: true });
  }

  /**
   * Runs the check; call once the root key is installed (again after {@link dropKeys}, with the
   * key recovered anew: checked as at start-up). Retries store failures until it decides.
   */
  async start(): Promise<void> {
    if (this.#state === 'stale' && this.#key === undefined) {
      this.#state = 'checking';
      this.#verdict = undefined;
    }
    if (this.#state !== 'checking' || this.#key !== undefined) return;
    this.#key = new AnchorKey(this.#o.keys.root());
    const dropped = this.#dropped;
    this.#dropped = undefined;
    // The key recovered is the one dropped: nothing rotated, the store's records were forged.
    if (dropped !== undefined && this.#key.open(dropped) !== undefined) return this.#alarm('root_not_rotated', undefined);
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        await this.#check(this.#key);
        return;
      } catch (e) {
        this.#o.logger.warn({ reason: errInfo(e), attempt }, 'rollback check failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))).unref());
      }
    }
  }

  async #check(key: AnchorKey): Promise<void> {
    const { verdict: v, stored, store } = await checkAtStartup({
      keepers: this.#keepers, anchor: this.#o.anchor, key, seen: this.#seen, stopped: () => this.#stopped, logger: this.#o.logger,
    });
    this.#verdict = v;
    if (this.#stopped) return;
    if (!v.rollback) {
      this.#o.logger.info({ storeCounter: Number(v.store), keeperCounter: Number(v.keeperMax), keepersWithAnchor: v.verified }, 'rollback check passed');
      this.#serve(key, this.#chainFor(key, v.store, store === undefined ? stored : undefined, stored ?? undefined));
      return;
    }
    // Evidence far above the Keepers' anchor (and the store's: another history): no other process on this store writes past it.
    const evidence = farAbove(v.keeperMax > v.store ? v.keeperMax : v.store);
    this.#refuse(evidence);
    this.#witness.holdEvidence(key, evidence, { stopped: this.#notRefused });
    reportAtStartup(v, this.#o);
  }

  /**
   * Every RECHECK_MS: serving, the look at the stored record (witness.ts); refused, whether
   * another process's accept re-anchored the store above every counter refused on (then the
   * start-up check runs again: several instances on one database need not each be accepted).
   */
  #watch(): void {
    clearInterval(this.#recheck);
    this.#recheck = setInterval(() => void this.#tick(), this.#o.recheckMs ?? RECHECK_MS);
    this.#recheck.unref();
  }

  async #tick(): Promise<void> {
    if (this.#state === 'serving') return this.#witness.look();
    const key = this.#key;
    if (this.#state !== 'refused' || this.#ticking || !key) return;
    this.#ticking = true;
    try {
      if (!(await this.#witness.acceptedElsewhere(this.#refusedAt)) || this.#state !== 'refused' || this.#stopped) return;
      this.#o.logger.warn({ refusedAt: Number(this.#refusedAt) }, 'the rollback was accepted through another Nexus process (the store is re-anchored above it); checking again');
      this.#o.audit.event('rollback.accepted_elsewhere', { refusedAt: Number(this.#refusedAt) });
      this.#witness.release();
      this.#state = 'checking';
      this.#verdict = undefined;
      await this.#check(key).catch((e: unknown) => {
        this.#o.logger.warn({ reason: errInfo(e) }, 'rollback check failed; retrying at the next look');
        this.#refuse(this.#refusedAt);
      });
      if (this.serving()) await this.#o.onAcceptedElsewhere?.();
    } finally {
      this.#ticking = false;
    }
  }

  /** Refused (not ready) until an accept moves the store above `refusedAt`. */
  #refuse(refusedAt: bigint): void {
    this.#state = 'refused';
    this.#refusedAt = refusedAt;
    this.#o.observer?.rollbackDetected(true);
    this.#watch();
  }

  #serve(key: AnchorKey, chain: AnchorChain, rekeyed = false): void {
    this.#witness.release();
    this.#witness.forget(rekeyed);
    this.#chain = chain;
    this.#o.anchor.arm(chain.seal, chain.noteCommitted, chain.mark);
    this.#watch();
    this.#pusher = new AnchorPusher({
      peers: this.#o.peers, client: this.#o.client, anchor: this.#o.anchor, key, logger: this.#o.logger,
      debounceMs: this.#o.debounceMs ?? 500, timeoutMs: STATUS_TIMEOUT_MS,
      ...(this.#o.observer ? { observer: this.#o.observer } : {}),
      onAhead: (keeperCounter) => void this.#witness.compare(keeperCounter),
      bound: async (seen) => (await this.#witness.bind([seen])) === true,
      open: (record) => key.open(record) ?? this.#previous?.open(record),
      epoch: () => this.#o.keys.sharing()?.epoch,
    });
    this.#state = 'serving';
    this.#o.observer?.rollbackDetected(false);
    this.#pusher.start();
  }

  /**
   * The operator accepts the detected rollback: the store's counter moves above the
   * Keepers', the new anchor is pushed, and Nexus serves. False when nothing is refused.
   */
  async accept(): Promise<{ storeCounter: number; keeperCounter: number; counter: number } | undefined> {
    const key = this.#key;
    const v = this.#verdict;
    if (this.#state !== 'refused' || !key || !v) return undefined;
    // Far above every anchor known (the Keepers' now too: another process may have raised
    // them since): a Keeper silent now, or evidence landing late, never looks newer afterwards.
    // And above the store and the evidence this process handed out, or the accepted record could
    // land on the evidence's counter (Keepers silent now) and look like another history.
    const held = await this.#keepers.highest(key);
    const above = farAbove([held, v.keeperMax, v.store, this.#refusedAt].reduce((a, b) => (b > a ? b : a)));
    if (this.#state !== 'refused') return undefined;
    // The record stored now is the one the operator accepts as the base (verified or not).
    const chain = this.#chainFor(key, v.store, await this.#o.anchor.read());
    this.#o.anchor.arm(chain.seal, chain.noteCommitted, chain.mark);
    let record: Uint8Array;
    try {
      record = await this.#o.anchor.advance(above);
    } catch (e) {
      this.#o.anchor.disarm();
      throw e;
    }
    const counter = Number(key.open(record) ?? 0n);
    const out = { storeCounter: Number(v.store), keeperCounter: Number(v.keeperMax), counter };
    this.#o.audit.event('rollback.accepted', out);
    this.#o.logger.warn(out, 'state rollback accepted by the operator; the store is re-anchored and Nexus serves again');
    this.#serve(key, chain);
    await this.#pusher?.pushAll();
    return out;
  }

  /**
   * After a root-key rotation: the anchor is sealed and checked under the NEW root key's
   * purpose key from now on. The store's counter moves one step under the new key at once
   * and is pushed, so the Keepers' copies (sealed under the old key, which no longer
   * verify) are replaced and the next start-up check can compare them. No-op unless serving.
   */
  async rekey(): Promise<void> {
    const old = this.#key;
    if (this.#state !== 'serving' || !old) return;
    await this.#pusher?.stop();
    if (this.#state !== 'serving') return; // refused or stale meanwhile: that verdict stands
    await this.#witness.bind(); // what the old chain moved past is bound now (or, store silent, later)
    if (this.#state !== 'serving') return;
    const committed = this.#chain?.committed ?? 0n;
    const floor = this.#chain?.floor ?? 0n;
    const known = this.#chain?.known;
    const key = new AnchorKey(this.#o.keys.root());
    this.#key = key;
    // Records sealed under the old key (writes during this re-key; instances that keep the
    // old root until they restart) still verify through `previous`.
    this.#previous?.destroy();
    this.#previous = old;
    this.#serve(key, this.#chainFor(key, committed, undefined, known), true);
    await this.#o.anchor.advance(floor + 1n);
    await this.#pusher?.pushAll();
  }

  /** A chain under `key` whose rollbacks at run time refuse service (see sealer.ts). */
  #chainFor(key: AnchorKey, committed: bigint, adopt: Uint8Array | null | undefined, known?: Uint8Array): AnchorChain {
    return new AnchorChain({
      key, logger: this.#o.logger, committed, onUnbound: () => this.#witness.chainMoved(),
      ...(this.#previous ? { previous: this.#previous } : {}),
      ...(adopt !== undefined ? { adopt } : known !== undefined ? { known } : {}),
      onRollback: (cause, storeCounter) => this.#refuseAtRuntime(cause, storeCounter),
    });
  }

  /**
   * The store went back (or its record was replaced) while Nexus serves: refuse from now on,
   * exactly as a rollback found at start-up (accept-rollback re-anchors above everything seen).
   */
  #refuseAtRuntime(cause: AlarmCause, storeCounter: bigint | undefined, keeperCounter = 0n): void {
    if (this.#state !== 'serving') return;
    this.#o.anchor.disarm();
    this.#pusherStopped = this.#pusher?.stop(); // the Keepers keep the higher anchor: the evidence
    const judge = this.#o.rootMovedOn;
    if (cause !== 'unverified' || !judge) return this.#alarm(cause, storeCounter, keeperCounter);
    // A record this process cannot verify is also what another worker's or instance's root-key
    // rotation leaves behind. Refuse everything (not ready, no alarm yet) while the store AND
    // the Keepers (which whoever can write the database cannot) say which it is.
    this.#state = 'stale';
    const sharing = this.#o.keys.sharing()?.epoch;
    const moved = async (): Promise<boolean> => (await judge()) && sharing !== undefined && this.#keepers.movedPast(sharing);
    moved().then((yes) => yes, (e: unknown) => {
      if (!this.#stopped) this.#o.logger.warn({ reason: errInfo(e) }, 'could not tell a root-key rotation elsewhere from a rollback; treated as a rollback');
      return false;
    }).then((yes) => {
      if (this.#stopped || this.#state !== 'stale') return;
      if (!yes) return this.#alarm(cause, storeCounter);
      this.#o.audit.event('rollback.root_rotated_elsewhere', { epoch: sharing ?? 0 });
      this.#o.logger.warn({ reason: 'root_rotated_elsewhere' },
        'another Nexus process rotated the root key: this one holds the old key and answers not ready until it has the new one (it recovers it from the Keepers; a worker is replaced)');
      this.#o.onStale?.();
    });
  }

  /**
   * Stale only (the root key is being dropped to be recovered anew: src/nexus/rejoin.ts): the
   * anchor keys derived from the old root are destroyed; until `start` runs with the new key,
   * the state stays stale (not ready, readiness `root_rotated_elsewhere`).
   */
  dropKeys(): void {
    if (this.#state !== 'stale') return;
    const committed = this.#chain?.committed ?? 0n;
    if (committed > this.#seen) this.#seen = committed;
    // A MAC under the old key (reveals nothing of it): did recovery bring back the same root?
    this.#dropped = this.#key?.seal(0n);
    this.#key?.destroy();
    this.#key = undefined;
    this.#previous?.destroy();
    this.#previous = undefined;
    this.#chain = undefined;
    this.#pusher = undefined;
  }

  /**
   * A Keeper's status answer (the Keeper probe's, every couple of seconds): a verified anchor
   * above what this process knows is compared with the store; then the pusher re-sends the
   * anchor to a Keeper that lacks it.
   */
  keeperStatus(pos: number, st: KeeperStatus): void {
    const anchor = st.anchor;
    if (this.#state === 'serving' && this.#key && this.#chain && anchor !== undefined) {
      const theirs = this.#key.open(anchor) ?? this.#previous?.open(anchor);
      if (theirs !== undefined) void this.#witness.compare(theirs, anchor);
    }
    this.#pusher?.onStatus(pos, st);
  }

  /** The look at the stored anchor while serving, now (RECHECK_MS, or the policy generation went back). */
  async lookNow(): Promise<void> {
    await this.#witness.look();
  }

  #alarm(cause: AlarmCause | 'root_not_rotated', storeCounter: bigint | undefined, keeperCounter = 0n): void {
    const max = (...xs: bigint[]): bigint => xs.reduce((a, b) => (b > a ? b : a));
    const own = max(this.#chain?.floor ?? 0n, this.#seen, this.#pusher?.latest() ?? 0n);
    const keepers = max(this.#witness.keepersSeen, keeperCounter);
    const highest = max(own, keepers);
    // Far above what this process wrote or read; another process's evidence is not raised again.
    const evidence = max(farAbove(own), keepers);
    this.#verdict = { rollback: true, store: storeCounter ?? 0n, keeperMax: highest, verified: 0, invalid: 0 };
    this.#refuse(evidence);
    const fields = { cause, storeCounter: Number(storeCounter ?? 0n), highestSeen: Number(this.#verdict.keeperMax) };
    this.#o.audit.event('rollback.detected', fields);
    this.#o.logger.error({ alarm: 'state_rollback_detected', ...fields },
      `STATE ROLLBACK DETECTED while serving: ${ALARM_TEXT[cause]}Nexus refuses to serve. If this store was restored from a backup on purpose, run \`spike operator accept-rollback\``);
    // The Keepers are given the evidence (once this pusher's last round is done): the other
    // processes on this store, and a restart's check, refuse too where only this one knew.
    if (this.#key) this.#witness.holdEvidence(this.#key, evidence, { after: this.#pusherStopped, stopped: this.#notRefused });
  }

  /** Status probe hook: re-send the anchor to a Keeper that lacks the latest. */
  get pusher(): AnchorPusher | undefined {
    return this.#pusher;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#recheck);
    this.#witness.release();
    await this.#pusher?.stop();
    this.#o.anchor.disarm();
    this.#key?.destroy();
    this.#previous?.destroy();
  }
}
