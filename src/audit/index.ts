/**
 * The audit trail: an append-only, hash-chained and MAC'd log of every API decision and
 * lifecycle event (format.ts), its group-committing, fail-closed writer (writer.ts) and the
 * verifier (verify.ts), offline or with the MACs checked online, and the failure causes
 * (failure.ts). See docs/audit.md.
 */
export { AuditKeys, GENESIS_PREV, type EntryFields, buildLine, firstInvalidMac, sha256Hex, splitMac } from './format.js';
export { type AuditIo, type AuditObserver, AuditUnavailableError, AuditWriter, type AuditWriterOptions } from './writer.js';
export { AUDIT_FAILURE_ADVICE, type AuditFailureCause, auditErrno, auditFailureCause } from './failure.js';
export { type MacCheck, type TrailFile, type VerifyProblem, type VerifyResult, keyedLines, verifyTrail } from './verify.js';
