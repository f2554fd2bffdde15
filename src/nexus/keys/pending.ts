/**
 * The pending sharing record of a sharing move (share refresh, Keeper set change), kept
 * in the store beside the current sharing record. Public bytes only: epoch, n, t, the
 * Keeper list and the Feldman commitments of the NEW sharing, plus the kind of move.
 *
 * Life of a move in the store:
 *  1. `storePending` writes the new sharing's public data BEFORE any Keeper sees a share;
 *  2. `commitSharing` writes the new sharing as the current sharing record, then clears the
 *     pending record (a tombstone that still carries the epoch);
 *  3. `clearPending` alone abandons a move.
 * Step 2 is two writes, made crash-safe by one rule instead of a multi-record transaction:
 * a pending record whose epoch is not above the current sharing's epoch is void (the
 * commit landed; only the tombstone write was lost). So the current record is always the
 * truth, and a pending record is live only while its epoch is higher.
 *
 * Epoch numbers are never reused: the tombstone keeps the highest epoch handed out, and a
 * new move takes max(current, pending) + 1 (`nextEpoch`).
 */
import type { AuditEvents } from '../audit.js';
import { SpikeError, errInfo, type Logger } from '../../lib/index.js';
import type { Store } from '../../store/index.js';
import type { RootKey } from '../../crypto/index.js';
import { AdoptError, decodeSharing, encodeSharing, SHARING_RECORD } from './sharing.js';
import type { KeyState, SharingInfo } from './state.js';

export const PENDING_SHARING_RECORD = 'sharing.pending';

/** Why a sharing moves: new shares of the same polynomial degree, or new (n, t, Keepers). */
/** `rotate`: a sharing of a NEW root key (rotation.ts), committed by the store's root switch. */
export type MoveKind = 'refresh' | 'reshare' | 'rotate';

export interface PendingSharing {
  kind: MoveKind;
  sharing: SharingInfo;
}

interface PendingRecord {
  /** Highest epoch handed out to a move (live or cleared). */
  epoch: number;
  live: PendingSharing | undefined;
}

export class PendingRecordError extends SpikeError {
  constructor() {
    super('pending_record_malformed', 'the stored pending sharing record is malformed');
  }
}

function decode(b: Uint8Array): PendingRecord {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(Buffer.from(b).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new PendingRecordError();
  }
  const { v, epoch, kind, sharing } = o;
  if (v !== 1 || !Number.isSafeInteger(epoch) || (epoch as number) < 1) throw new PendingRecordError();
  if (sharing === undefined || sharing === null) return { epoch: epoch as number, live: undefined };
  if (kind !== 'refresh' && kind !== 'reshare' && kind !== 'rotate' || typeof sharing !== 'string') throw new PendingRecordError();
  let s: SharingInfo;
  try {
    s = decodeSharing(Buffer.from(sharing, 'base64'), 'pending');
  } catch (e) {
    if (e instanceof AdoptError) throw new PendingRecordError();
    throw e;
  }
  if (s.epoch !== epoch) throw new PendingRecordError();
  return { epoch: s.epoch, live: { kind, sharing: s } };
}

async function readRecord(store: Store): Promise<PendingRecord | undefined> {
  const raw = await store.getSystem(PENDING_SHARING_RECORD);
  return raw && raw.length > 0 ? decode(raw) : undefined;
}

/**
 * The live pending sharing, if any: one whose epoch is above `currentEpoch` (a lower or
 * equal one is a committed move whose tombstone write was lost: void).
 */
export async function loadPending(store: Store, currentEpoch: number): Promise<PendingSharing | undefined> {
  const r = await readRecord(store);
  return r?.live && r.live.sharing.epoch > currentEpoch ? r.live : undefined;
}

/** The epoch for a new move: above every epoch ever handed out. */
export async function nextEpoch(store: Store, currentEpoch: number): Promise<number> {
  const r = await readRecord(store);
  return Math.max(currentEpoch, r?.epoch ?? 0) + 1;
}

/** Writes the pending record of `p`, its sharing tagged under `root` (the root key held now). */
export async function storePending(store: Store, p: PendingSharing, root: RootKey): Promise<void> {
  const body = Buffer.from(encodeSharing(p.sharing, root, 'pending')).toString('base64');
  await store.putSystem(PENDING_SHARING_RECORD, Buffer.from(JSON.stringify({ v: 1, epoch: p.sharing.epoch, kind: p.kind, sharing: body })));
}

/** Abandons (or, after a commit, retires) the pending record; keeps its epoch reserved. */
export async function clearPending(store: Store, epoch: number): Promise<void> {
  await store.putSystem(PENDING_SHARING_RECORD, Buffer.from(JSON.stringify({ v: 1, epoch })));
}

/** Makes `sharing` (a sharing of `root`) the current sharing record, then retires the pending record (see the module doc). */
export async function commitSharing(store: Store, sharing: SharingInfo, root: RootKey): Promise<void> {
  await store.putSystem(SHARING_RECORD, encodeSharing(sharing, root));
  await clearPending(store, sharing.epoch);
}

/**
 * After recovery with a live pending record: recovered from the pending sharing → finish
 * the move (commit it; the re-push then sends the new epoch, which Keepers promote);
 * recovered from the current sharing → abandon the move (its shares may be on fewer than
 * t Keepers); the operator reruns it. Store failures are logged: the next start settles it.
 * What is committed is the sharing `adoptKey` installed (it has the pending sharing's
 * commitments, and its Keeper list was checked), never the pending record as read.
 */
export async function settleMove(o: { store: Store; keys: KeyState; logger: Logger; audit?: AuditEvents }, pending: SharingInfo, fromPending: boolean): Promise<void> {
  const fields = { epoch: pending.epoch };
  try {
    const installed = o.keys.sharing();
    if (fromPending && installed) {
      await commitSharing(o.store, installed, o.keys.root());
      o.logger.warn(fields, 'sharing move finished at recovery: the key was rebuilt from the new sharing, now committed');
      o.audit?.event('sharing.move_finished_at_recovery', fields);
    } else {
      await clearPending(o.store, pending.epoch);
      o.logger.warn(fields, 'sharing move abandoned at recovery: the key was rebuilt from the current sharing; rerun the refresh or reshare');
      o.audit?.event('sharing.move_abandoned', { ...fields, reason: 'recovered_from_current' });
    }
  } catch (err) {
    o.logger.error({ err: errInfo(err), ...fields }, 'could not settle the pending sharing move; it is settled at the next start');
  }
}
