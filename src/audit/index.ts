/**
 * The audit trail: an append-only, hash-chained and MAC'd log of every API decision and
 * lifecycle event (format.ts), its group-committing, fail-closed writer (writer.ts) and the
 * offline verifier (verify.ts). See docs/audit.md.
 */
export { AuditKeys, GENESIS_PREV, type EntryFields, buildLine, sha256Hex, splitMac } from './format.js';
export { type AuditIo, type AuditObserver, AuditUnavailableError, AuditWriter, type AuditWriterOptions } from './writer.js';
export { AUDIT_FAILURE_ADVICE, type AuditFailureCause, auditErrno, auditFailureCause } from './failure.js';
export { type TrailFile, type VerifyProblem, type VerifyResult, verifyTrail } from './verify.js';
