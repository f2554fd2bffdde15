/**
 * `rotate-root-key`: a NEW random root key replaces the old one, without re-encrypting
 * anything before it answers and without a window where a crash loses the store.
 *
 * Order (each step logged and audited; never a key or a share):
 *  1. draw the new root key R' (CSPRNG);
 *  2. STAGE its sharing through the two-phase sharing move (`RootSharingMove.stage`): the
 *     new sharing (epoch e+1, commitments of R') is stored as the PENDING sharing record and
 *     every Keeper acknowledges its PENDING share of R', beside its current share of R;
 *  3. SWITCH the store in ONE transaction (src/store key-custody.ts `switchRoot`): a new
 *     storage and cipher generation in the keyring, the keyring sealed under R', a new
 *     key-check record for R', and the sharing record of epoch e+1;
 *  4. install R' in the key state (the old root key is wiped);
 *  5. PROMOTE: every Keeper makes its pending share current and drops epoch e (best effort:
 *     the periodic re-push completes it);
 *  6. start the background re-encryption (records under older storage key ids move to the
 *     new one; the old storage keys are then erased from the keyring).
 *
 * Crash safety (kill -9 anywhere): before step 3 commits, the store opens with R only and
 * every Keeper still holds its current share of R (recovery as usual; the pending record
 * and pending shares are void). From step 3 on, the store opens with R' only and every Keeper
 * holds a pending share of R' of the store's current epoch e+1 (recovery uses the shares of
 * the epoch the store records, current or pending on the Keeper). A failed stage (a Keeper
 * did not acknowledge) abandons the rotation before anything in the store changed.
 *
 * Old key material after a rotation: R is wiped in memory at step 4; the keyring keeps the
 * older storage keys only until re-encryption finished, and the older cipher versions (their
 * ciphertexts live with the clients; `rewrap` moves them). Shares and recovery shards of
 * epoch e are useless once the Keepers promoted (operators must re-export shards).
 *
 * One rotation at a time per Nexus; a second call gets `rotation_in_progress` (409).
 *
 * A rotation runs outside the deadline of the request that asked for it, as a sharing move
 * does (move.ts): on PostgreSQL a request's store calls get only what is left of its deadline,
 * and a stage that spent it waiting for Keepers would make the switch fail at once.
 */
import { RootKey, wipeShare, type Share } from '../../crypto/index.js';
import { SpikeError, errInfo, outsideRequest, type Logger } from '../../lib/index.js';
import { custodyOf, type Reencryptor, type Store } from '../../store/index.js';
import type { AuditEvents } from '../audit.js';
import { encodeSharing, SHARING_RECORD } from './sharing.js';
import type { KeyState, SharingInfo } from './state.js';

/** A sharing of a new root key whose shares every Keeper acknowledged as PENDING. */
export interface StagedSharing {
  sharing: SharingInfo;
  /** `threshold` shares of the new sharing (the key state's basis); wiped by the rotation. */
  basis: Share[];
}

/**
 * The two-phase sharing move, as rotation uses it: stage a sharing of a GIVEN root key as
 * pending (store record + every Keeper acknowledged), then promote it once the store switched.
 */
export interface RootSharingMove {
  /** Steps 2 of the header; throws (nothing committed, pending cleared) when a Keeper did not acknowledge. */
  stage(root: RootKey): Promise<StagedSharing>;
  /** Step 5; best effort (the periodic re-push completes it). */
  promote(staged: StagedSharing): Promise<void>;
  /** Called once the rotation ended, whatever happened (releases the move's lock, wipes its shares). */
  done?(): void;
}

/**
 * Points of a rotation outside its sharing move (test fault injection hooks in here; see the
 * Nexus entry): after the store switch committed (the key state still holds the old root key)
 * and after the Keepers were told to promote (re-encryption not yet started).
 */
export type RotationStep = 'after-root-switch' | 'after-promote';

type RotationErrorCode = 'rotation_in_progress' | 'rotation_not_ready' | 'rotation_unsupported' | 'rotation_unavailable';

export class RotationError extends SpikeError {
  constructor(code: RotationErrorCode) {
    super(code, {
      rotation_in_progress: 'a root-key rotation is already running',
      rotation_not_ready: 'no root key with a recorded sharing is installed',
      rotation_unsupported: 'root-key rotation needs a persistent store (sqlite or postgres)',
      rotation_unavailable: 'root-key rotation needs the two-phase sharing move, which this Nexus does not have',
    }[code]);
  }
}

export interface RotationResult {
  epoch: number;
  storageKeyId: number;
  cipherVersion: number;
}

export interface RootRotationOptions {
  store: Store;
  keys: KeyState;
  logger: Logger;
  reencrypt: Reencryptor;
  move?: RootSharingMove | undefined;
  audit?: AuditEvents;
  /** Runs once the new root key is installed (the rollback anchor re-keys); failures are logged. */
  afterSwitch?: () => Promise<void>;
  /** Called (and awaited) at each {@link RotationStep}; test fault injection only. */
  onStep?: (step: RotationStep) => void | Promise<void>;
}

export class RootRotation {
  readonly #o: RootRotationOptions;
  #running = false;

  constructor(opts: RootRotationOptions) {
    this.#o = opts;
  }

  get reencrypt(): Reencryptor {
    return this.#o.reencrypt;
  }

  async rotate(): Promise<RotationResult> {
    if (this.#running) throw new RotationError('rotation_in_progress');
    const { store, keys, move } = this.#o;
    if (!keys.isReady() || !keys.sharing()) throw new RotationError('rotation_not_ready');
    if (!custodyOf(store)) throw new RotationError('rotation_unsupported');
    if (!move) throw new RotationError('rotation_unavailable');
    this.#running = true;
    try {
      return await outsideRequest(() => this.#run(move));
    } finally {
      this.#running = false;
    }
  }

  async #run(move: RootSharingMove): Promise<RotationResult> {
    const { store, keys, logger, audit, reencrypt } = this.#o;
    const from = keys.sharing()!.epoch;
    const log = logger.child({ op: 'rotate-root-key', fromEpoch: from });
    let next: RootKey | undefined = RootKey.generate();
    let staged: StagedSharing | undefined;
    try {
      log.info('root-key rotation: started');
      staged = await move.stage(next);
      const to = staged.sharing.epoch;
      log.info({ toEpoch: to }, 'root-key rotation: new shares held by every Keeper as pending');
      audit?.event('root_key.rotation_staged', { from, to });
      const custody = custodyOf(store);
      if (!custody) throw new RotationError('rotation_unsupported');
      const ids = await custody.switchRoot(next, [[SHARING_RECORD, encodeSharing(staged.sharing, next)]]);
      log.info({ toEpoch: to, storageKeyId: ids.storage, cipherVersion: ids.cipher }, 'root-key rotation: store switched to the new root key');
      audit?.event('root_key.rotated', { from, to, storage_key_id: ids.storage, cipher_version: ids.cipher });
      await this.#o.onStep?.('after-root-switch');
      keys.replaceRoot(next, staged.basis, staged.sharing);
      next = undefined; // owned by the key state now
      await this.#o.afterSwitch?.().catch((e: unknown) => {
        log.error({ err: errInfo(e) }, 'root-key rotation: the rollback anchor could not be re-keyed; detection resumes after the next write and push');
      });
      await move.promote(staged).catch((e: unknown) => {
        log.warn({ err: errInfo(e) }, 'root-key rotation: promotion not acknowledged by every Keeper; the periodic re-push completes it');
      });
      await this.#o.onStep?.('after-promote');
      reencrypt.kick();
      log.info('root-key rotation: done; re-encryption runs in the background; re-export the recovery shards now');
      return { epoch: to, storageKeyId: ids.storage, cipherVersion: ids.cipher };
    } catch (e) {
      log.error({ err: errInfo(e) }, 'root-key rotation failed; the current root key stays in force');
      audit?.event('root_key.rotation_failed', { from });
      throw e;
    } finally {
      next?.destroy();
      staged?.basis.forEach(wipeShare);
      move.done?.();
    }
  }
}
