/**
 * The `postgres` backend's part of the key custody (../key-custody.ts): the key-record
 * update under the key-records advisory lock (the lock `settleKeyRecords` takes, so an
 * unlock, a seal reservation and a rotation never interleave across instances), the scan
 * for blobs under older key ids, and compare-and-swap re-writes of re-sealed blobs.
 *
 * The envelope key id is bytes 2–5 of every blob (`substring(col from 2 for 4)`); a swap
 * is written only when the cell still holds the bytes read, so a concurrent write (sealed
 * under the current key already) always wins and its CAS version is untouched.
 */
import type { BlobSwap, KeyRecordsUpdate, StaleBlob } from '../key-custody.js';
import { SEAL_FENCE_RECORD } from '../seal-fence.js';
import { KEY_RECORDS_LOCK_KEY } from './schema.js';
import type { Run } from './sql.js';

const STALE = [
  { sql: 'SELECT id, 0 AS version, path AS blob FROM spike_secrets WHERE substring(path from 2 for 4) <> $1 LIMIT $2', kind: 'secret', field: 'path' },
  { sql: 'SELECT id, 0 AS version, meta AS blob FROM spike_secrets WHERE substring(meta from 2 for 4) <> $1 LIMIT $2', kind: 'secret', field: 'meta' },
  { sql: 'SELECT id, version, value AS blob FROM spike_secret_versions WHERE substring(value from 2 for 4) <> $1 LIMIT $2', kind: 'secret', field: 'values' },
  { sql: 'SELECT id, 0 AS version, body AS blob FROM spike_policies WHERE substring(body from 2 for 4) <> $1 LIMIT $2', kind: 'policy', field: 'body' },
] as const;

const SWAP: Record<StaleBlob['cell']['field'], string> = {
  path: 'UPDATE spike_secrets SET path = $1 WHERE id = $2 AND path = $3',
  meta: 'UPDATE spike_secrets SET meta = $1 WHERE id = $2 AND meta = $3',
  values: 'UPDATE spike_secret_versions SET value = $1 WHERE id = $2 AND value = $3 AND version = $4',
  body: 'UPDATE spike_policies SET body = $1 WHERE id = $2 AND body = $3',
};

/**
 * Inside a sealing write's transaction: the seal fence (../key-custody.ts). FOR SHARE waits for
 * a keyring update in flight and then reads what it committed, and holds the update off until
 * this write commits, so no write seals under a generation an update has just replaced.
 */
export async function readSealFence(run: Run): Promise<Uint8Array | null> {
  const r = await run<{ value: Buffer }>({ text: 'SELECT value FROM spike_system WHERE key = $1 FOR SHARE', values: [SEAL_FENCE_RECORD] });
  const v = r.rows[0]?.value;
  return v === undefined ? null : new Uint8Array(v);
}

/** Inside a transaction: locks the key records, reads `keys`, plans, upserts. */
export async function pgUpdateKeyRecords<T>(run: Run, keys: string[], plan: (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>): Promise<T> {
  await run(`SELECT pg_advisory_xact_lock(${KEY_RECORDS_LOCK_KEY}::bigint)`);
  const rows = (await run<{ key: string; value: Buffer }>({ text: 'SELECT key, value FROM spike_system WHERE key = ANY ($1::text[])', values: [keys] })).rows;
  const found = new Map(rows.map((r) => [r.key, new Uint8Array(r.value)]));
  const { result, writes } = plan((k) => found.get(k) ?? null);
  for (const [key, value] of writes) {
    await run({
      text: 'INSERT INTO spike_system (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
      values: [key, Buffer.from(value)],
    });
  }
  return result;
}

export async function pgScanStale(run: Run, currentId: number, limit: number): Promise<StaleBlob[]> {
  const kid = Buffer.alloc(4);
  kid.writeUInt32BE(currentId, 0);
  const out: StaleBlob[] = [];
  for (const s of STALE) {
    if (out.length >= limit) break;
    const rows = (await run<{ id: Buffer; version: number; blob: Buffer }>({ text: s.sql, values: [kid, limit - out.length] })).rows;
    for (const r of rows) out.push({ cell: { kind: s.kind, id: r.id, version: Number(r.version), field: s.field }, blob: r.blob });
  }
  return out;
}

export async function pgReplaceBlobs(run: Run, swaps: BlobSwap[]): Promise<number> {
  let n = 0;
  for (const { cell, old, blob } of swaps) {
    const values: unknown[] = [blob, Buffer.from(cell.id), old];
    if (cell.field === 'values') values.push(cell.version);
    n += (await run({ text: SWAP[cell.field], values })).rowCount ?? 0;
  }
  return n;
}
