/**
 * The batching behind `NexusClient.auditVerify`: a trail's keyed lines are sent to
 * `POST /v1/audit/verify` in order, in batches within the route's limits (lines per call,
 * bytes per body), stopping at the first batch that reports a line whose MAC does not verify.
 * A line longer than the route accepts was never written by Nexus: it is reported as the
 * first invalid line without being sent. The answer is checked strictly (an index outside
 * the batch is a malformed answer).
 */
import { AUDIT_VERIFY_LIMITS } from '../protocol/curve-free.js';
import { NexusApiError, SdkUsageError } from './errors.js';

/** Sends one batch; resolves with the parsed 200 answer. */
export type VerifyBatch = (entries: string[]) => Promise<Record<string, unknown>>;

/** Leaves room for the JSON around the lines (`{"entries":[…]}`, quotes, commas, escapes). */
const BODY_BUDGET = Math.floor(AUDIT_VERIFY_LIMITS.maxBodyBytes * 0.75);

function firstInvalidOf(answer: Record<string, unknown>, batchLength: number): number | null {
  const f = answer['firstInvalid'];
  if (f === null) return null;
  if (typeof f === 'number' && Number.isSafeInteger(f) && f >= 0 && f < batchLength) return f;
  throw new NexusApiError('data_unmarshal_failure', { status: 200 });
}

/** The index (into `lines`) of the first line whose MAC Nexus does not verify, or null. */
export async function verifyAuditLines(send: VerifyBatch, lines: readonly string[]): Promise<number | null> {
  if (!Array.isArray(lines) || lines.some((l) => typeof l !== 'string')) throw new SdkUsageError('sdk_bad_argument', 'audit lines must be strings');
  let start = 0;
  while (start < lines.length) {
    const batch: string[] = [];
    let bytes = 0;
    for (let i = start; i < lines.length && batch.length < AUDIT_VERIFY_LIMITS.maxEntries; i++) {
      const line = lines[i]!;
      if (line.length === 0 || line.length > AUDIT_VERIFY_LIMITS.maxEntryLength) {
        if (batch.length === 0) return i;
        break;
      }
      const size = Buffer.byteLength(JSON.stringify(line), 'utf8') + 1;
      if (batch.length > 0 && bytes + size > BODY_BUDGET) break;
      batch.push(line);
      bytes += size;
    }
    const bad = firstInvalidOf(await send(batch), batch.length);
    if (bad !== null) return start + bad;
    start += batch.length;
  }
  return null;
}
