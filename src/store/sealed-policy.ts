/**
 * Policy records for the sealed store (sealed.ts): sealing an upsert (keeping `createdAt` of
 * the record it replaces), opening one by name, and opening a whole listing. Integrity
 * (STO-06): a row that fails its check is never used: it is replaced by an upsert, and left
 * out of listings with one alarm line, so a tampered policy never widens access.
 */
import { type Logger, yieldToLoop } from '../lib/index.js';
import type { RecordSealer } from './codec.js';
import { compareCodeUnits } from './model.js';
import { StoreError, type PolicyInput, type PolicyRecord } from './types.js';

/** Policy rows decoded between two turns of the event loop in a listing. */
const YIELD_EVERY = 500;

/** The sealed body of `input` stored under `id`, replacing `old` (if any). */
export function sealPolicyWrite(sealer: RecordSealer, id: Buffer, input: PolicyInput, old: Buffer | null, now: Date, logger: Logger | undefined): { record: PolicyRecord; body: Buffer } {
  let createdAt = now;
  if (old) {
    // An unreadable old row is overwritten rather than blocking the upsert.
    try {
      const rec = sealer.openPolicyBody(id, old);
      if (rec.name === input.name) createdAt = rec.createdAt;
    } catch {
      logger?.error({ err: 'store_integrity' }, 'policy row failed its integrity check; replacing it');
    }
  }
  const record: PolicyRecord = { ...input, createdAt, updatedAt: now };
  return { record, body: sealer.sealPolicyBody(id, record) };
}

/** The policy `name` from its row; a row naming another policy is an integrity error. */
export function openPolicy(sealer: RecordSealer, id: Buffer, name: string, blob: Buffer): PolicyRecord {
  const rec = sealer.openPolicyBody(id, blob);
  if (rec.name !== name) throw new StoreError('store_integrity');
  return rec;
}

/** Every row that passes its check, sorted by name; the others are counted in one log line. */
export async function openPolicyRows(sealer: RecordSealer, rows: { id: Buffer; body: Buffer }[], logger: Logger | undefined): Promise<PolicyRecord[]> {
  const out: PolicyRecord[] = [];
  let bad = 0;
  for (let i = 0; i < rows.length; i++) {
    if (i > 0 && i % YIELD_EVERY === 0) await yieldToLoop();
    const row = rows[i]!;
    try {
      const rec = sealer.openPolicyBody(row.id, row.body);
      if (!sealer.policyId(rec.name).equals(row.id)) throw new StoreError('store_integrity');
      out.push(rec);
    } catch {
      bad++;
    }
  }
  if (bad > 0) logger?.error({ err: 'store_integrity', count: bad }, 'ignored policy rows that failed their integrity check');
  return out.sort((a, b) => compareCodeUnits(a.name, b.name));
}
