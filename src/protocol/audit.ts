/**
 * The additive audit routes' wire contract (docs/audit.md).
 *
 * `POST /v1/audit/verify` (superuser): the caller sends a bounded batch of audit lines,
 * exactly as they are in the file; Nexus checks each line's MAC under its audit key and
 * answers how many leading lines verified and the index of the first line whose MAC does not
 * verify (or that carries none), `null` when all do. The answer never holds a MAC or anything
 * else derived from the key, so it cannot be used to forge entries; the hash chain and order
 * are checked by the caller itself. Batches are bounded (lines and bytes) so one call costs
 * Nexus a bounded amount of work; a client sends a long trail in several calls.
 */
import { type Infer, s } from '../http/index.js';

export const AUDIT_VERIFY_LIMITS = Object.freeze({
  /** Lines per call. */
  maxEntries: 256,
  /** Characters per line (Nexus writes far shorter lines; a longer one was not written by it). */
  maxEntryLength: 16 * 1024,
  /** Request body cap (bytes). */
  maxBodyBytes: 1024 * 1024,
});

export const AuditVerifyRequest = s.object({
  entries: s.array(s.string({ minLength: 1, maxLength: AUDIT_VERIFY_LIMITS.maxEntryLength }), {
    minItems: 1, maxItems: AUDIT_VERIFY_LIMITS.maxEntries,
  }),
});
export type AuditVerifyRequest = Infer<typeof AuditVerifyRequest>;
export type AuditVerifyResponse = { verified: number; firstInvalid: number | null; err?: string };
