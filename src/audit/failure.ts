/**
 * Why the audit log cannot be written, named from the file system's error code, so that a
 * refused request, the log line and the operator's advice say "disk full" or "read-only"
 * instead of a bare "unavailable" (an audit disk problem is fixed on that disk: nothing
 * needs restoring). Codes only: an error message may quote the file's path.
 */

/** The named causes; `closed` = the writer was shut down (Nexus is stopping). */
export type AuditFailureCause = 'disk_full' | 'read_only' | 'io_error' | 'closed';

const BY_ERRNO: Readonly<Record<string, AuditFailureCause>> = {
  ENOSPC: 'disk_full',
  EDQUOT: 'disk_full',
  EFBIG: 'disk_full',
  EROFS: 'read_only',
  EACCES: 'read_only',
  EPERM: 'read_only',
};

/** The cause of a failed write or sync (an unknown code is an I/O error). */
export function auditFailureCause(e: unknown): AuditFailureCause {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? (BY_ERRNO[code] ?? 'io_error') : 'io_error';
}

/** The errno code of a failure, when it looks like one (for log lines), else ''. */
export function auditErrno(e: unknown): string {
  const code = (e as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]{1,20}$/.test(code) ? code : '';
}

/** What an operator can do about each cause (log lines and docs). */
export const AUDIT_FAILURE_ADVICE: Readonly<Record<AuditFailureCause, string>> = {
  disk_full: 'free space on the volume that holds the audit log (or grow it); requests are refused until then, nothing needs restoring',
  read_only: 'check that the audit log volume is mounted read-write and the file is writable by Nexus; nothing needs restoring',
  io_error: 'check the disk and the kernel log of the Nexus host',
  closed: 'Nexus is stopping',
};
