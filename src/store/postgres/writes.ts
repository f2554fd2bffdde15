/**
 * The `postgres` backend's write transactions, statement by statement (store.ts runs each
 * inside one BEGIN … COMMIT on one connection, retried on serialization failures): secret
 * writes under the metadata row lock, policy writes under the generation row lock, and the
 * first settling of the key records under their advisory lock. The order of locks is the
 * module comment's of store.ts.
 */
import type { RootKey } from '../../crypto/index.js';
import { keyRecordKeys, planKeyRecords, type KeyRecordsPlan } from '../key-check.js';
import type { MetaRow, SealedSecretWrite } from '../sealed.js';
import { StoreError, type KeyAdoption, type PolicyRecord } from '../types.js';
import { readSealFence } from './custody.js';
import { q, type Run } from './sql.js';

/** The metadata row locked for this transaction; retried when created concurrently. */
async function lockMeta(run: Run, id: Buffer): Promise<MetaRow> {
  for (;;) {
    const row = (await run<{ meta: Buffer }>(q('lockMeta', [id]))).rows[0];
    if (row) return { meta: row.meta, versions: true };
    // One statement: did someone create it since, or are there orphaned versions?
    const probe = (await run<{ present: boolean; versions: boolean }>(q('probe', [id]))).rows[0];
    if (probe?.present) continue; // created concurrently and committed: lock it now
    return { meta: null, versions: probe?.versions === true };
  }
}

/** A secret write: the seal fence, the locked metadata row, then what `plan` decides. */
export async function pgWriteSecret<T>(
  run: Run, id: Buffer, plan: (row: MetaRow, fence: Uint8Array | null) => { result: T; write: SealedSecretWrite | null },
): Promise<T> {
  const fence = await readSealFence(run);
  for (;;) {
    const { result, write } = plan(await lockMeta(run, id), fence);
    if (!write) return result;
    const { meta, added, dropped } = write;
    if (write.created) {
      if (!added) throw new StoreError('store_invalid_argument'); // only a put creates a path
      const ins = await run(q('insertSecret', [id, write.path, meta, added.version, added.blob]));
      if (ins.rowCount === 1) return result;
      continue; // Another instance created the path after our probe: lock its row and start over.
    }
    if (added) await run(q('putVersion', [id, meta, dropped, added.version, added.blob]));
    else if (dropped.length > 0) await run(q('updateMetaDropVersions', [id, meta, dropped]));
    else await run(q('updateMeta', [id, meta]));
    return result;
  }
}

/** The key records' first settling, under their advisory lock (see store.ts). */
export async function pgSettleKeyRecords<Refusal extends string>(run: Run, root: RootKey, adoption?: KeyAdoption<Refusal>): Promise<KeyRecordsPlan<Refusal>> {
  await run(q('lockKeyRecords'));
  const rows = (await run<{ key: string; value: Buffer }>(q('getSystems', [keyRecordKeys(adoption)]))).rows;
  const found = new Map(rows.map((r) => [r.key, new Uint8Array(r.value)]));
  const plan = planKeyRecords(root, (key) => found.get(key) ?? null, adoption);
  if (plan.ok) {
    for (const [key, value] of plan.inserts) {
      // Every writer of these records holds the lock: losing an insert means an outside writer.
      if ((await run(q('putSystemIfAbsent', [key, Buffer.from(value)]))).rowCount !== 1) throw new StoreError('store_busy');
    }
  }
  return plan;
}

/** A policy put: the generation row first (every policy writer takes it first: one order, no deadlocks). */
export async function pgWritePolicy(
  run: Run, id: Buffer, build: (old: Buffer | null, fence: Uint8Array | null) => { record: PolicyRecord; body: Buffer },
): Promise<PolicyRecord> {
  await run(q('lockGeneration'));
  const fence = await readSealFence(run);
  const old = (await run<{ body: Buffer }>(q('getPolicy', [id]))).rows[0]?.body ?? null;
  const { record, body } = build(old, fence);
  await run(q('putPolicy', [id, body]));
  await run(q('bumpGeneration'));
  return record;
}

/** A policy delete, under the generation row; the generation moves only when a row went. */
export async function pgRemovePolicy(run: Run, id: Buffer): Promise<boolean> {
  await run(q('lockGeneration'));
  const gone = (await run(q('deletePolicy', [id]))).rowCount === 1;
  if (gone) await run(q('bumpGeneration'));
  return gone;
}
