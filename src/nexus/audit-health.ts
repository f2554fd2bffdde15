/**
 * What is wrong with the audit log right now, said once and at a bounded rate (like the
 * store's health tracker): ONE error line when a cause starts (or changes) naming it and
 * what to do, then at most one summary line per interval while failures go on (with their
 * count), and one warn line when an entry is written again. A full audit disk under load
 * means a handful of lines, not one per refused request. Lines carry the errno code only,
 * never a path, a value or the file's name.
 */
import { AUDIT_FAILURE_ADVICE, type AuditFailureCause, AuditUnavailableError, auditErrno } from '../audit/index.js';
import type { Logger } from '../lib/index.js';
import { AUDIT_FAILURE_MESSAGE } from '../protocol/index.js';

const DEFAULT_INTERVAL_MS = 30_000;

export interface AuditHealth {
  /** A write (or the batch it was in) failed. */
  failed(e: unknown): void;
  /** An entry reached the disk. */
  written(): void;
  /** The current cause, or null while the log writes. */
  current(): AuditFailureCause | null;
}

export function auditHealth(logger: Logger, opts: { intervalMs?: number; now?: () => number } = {}): AuditHealth {
  const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  let cur: { cause: AuditFailureCause; since: number; failures: number } | null = null;
  let lastLine = 0;
  let unlogged = 0;
  return {
    failed(e) {
      const cause = e instanceof AuditUnavailableError ? e.failure : 'io_error';
      if (cause === 'closed') return;
      const errno = auditErrno(e instanceof Error ? e.cause : e);
      const t = now();
      if (cur === null || cur.cause !== cause) {
        cur = { cause, since: t, failures: 1 };
        lastLine = t;
        unlogged = 0;
        logger.error({ event: 'audit_failure', cause, errno }, `${AUDIT_FAILURE_MESSAGE[cause]}: ${AUDIT_FAILURE_ADVICE[cause]}`);
        return;
      }
      cur.failures++;
      unlogged++;
      if (t - lastLine >= intervalMs) {
        logger.error({ event: 'audit_failure', cause, errno, failures: unlogged, sinceMs: t - cur.since },
          `${AUDIT_FAILURE_MESSAGE[cause]} (still): ${AUDIT_FAILURE_ADVICE[cause]}`);
        lastLine = t;
        unlogged = 0;
      }
    },
    written() {
      if (cur === null) return;
      logger.warn({ event: 'audit_recovered', cause: cur.cause, failures: cur.failures, downMs: now() - cur.since }, 'audit log writable again');
      cur = null;
    },
    current: () => cur?.cause ?? null,
  };
}
