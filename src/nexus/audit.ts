/**
 * Nexus's audit wiring (src/audit): the writer from SPIKE_NEXUS_AUDIT_LOG, the router hook
 * and the lifecycle events.
 *
 * Design (fail closed with one durable write per request): an allowed request writes an
 * `intent` entry — caller, route, action, the target path as an HMAC, decision — after the
 * guard and BEFORE the handler, and the handler runs only once that entry is fsynced; if it
 * cannot be written the answer is 503 `state_not_ready` with `message` naming the cause
 * ("audit log unavailable: disk full" / ": read-only storage" / ": I/O error") and the
 * handler never runs, so nothing changes. The log names the cause once, at a bounded rate
 * (audit-health.ts). After the answer, every request (allowed, denied,
 * refused) writes a `result` entry with the status and duration; the response does not wait
 * for it, and it starts no flush of its own: it rides the next intent's group commit, or is
 * flushed within AuditWriter's DEFER_MS when no intent comes. Lifecycle events are written
 * the same way.
 *
 * The audit keys (path HMAC, entry MAC) are derived from the root key once it is installed;
 * before that, entries carry no `path` and `mac: null`.
 */
import fs from 'node:fs';
import { dirname } from 'node:path';
import { type AuditFailureCause, type AuditObserver, AuditKeys, AuditUnavailableError, AuditWriter, type EntryFields } from '../audit/index.js';
import type { RequestAuditor } from '../http/index.js';
import type { Logger } from '../lib/index.js';
import { AUDIT_FAILURE_MESSAGE, ApiError, ERR } from '../protocol/index.js';
import type { SpiffeId } from '../spiffe/index.js';
import { auditHealth } from './audit-health.js';
import type { KeyState } from './keys/state.js';

/** Lifecycle events (never a value, a path, a share or a key in `fields`). */
export interface AuditEvents {
  event(name: string, fields?: Record<string, string | number | boolean>): void;
  /**
   * For readiness: null while the audit log writes, else why it cannot. While it is failing
   * this tries one `audit.probe` entry, so a log that became writable again is noticed even
   * when no request arrives (a node taken out of a load balancer gets none). After a full
   * disk it first wants {@link AUDIT_RECOVERY_HEADROOM} bytes free: a small probe entry can
   * still fit in the last page of a full volume, and a node must not report ready while a
   * request's entry would not fit.
   */
  failure?(): Promise<AuditFailureCause | null>;
}

/** Free bytes the audit volume needs before a full-disk failure counts as over (readiness). */
export const AUDIT_RECOVERY_HEADROOM = 64 * 1024;

/** Free bytes for unprivileged writers on the volume holding `file` (Infinity when unknown). */
async function freeBytes(file: string): Promise<number> {
  try {
    const s = await fs.promises.statfs(dirname(file));
    return s.bavail * s.bsize;
  } catch {
    return Infinity;
  }
}

export const NO_AUDIT: AuditEvents = { event: () => undefined };

export interface NexusAudit extends AuditEvents {
  readonly writer: AuditWriter;
  readonly auditor: RequestAuditor<SpiffeId>;
  close(): Promise<void>;
}

/** The 503 for a request whose intent entry could not be written, naming the cause. */
function refusal(e: unknown): ApiError {
  const cause = e instanceof AuditUnavailableError ? e.failure : 'io_error';
  return new ApiError(ERR.notReady, AUDIT_FAILURE_MESSAGE[cause], { expose: true, reason: `audit_${cause}`, cause: e });
}

const targetPath = (body: unknown): string | undefined => {
  const p = (body as { path?: unknown } | null | undefined)?.path;
  return typeof p === 'string' ? p : undefined;
};

export function openNexusAudit(o: {
  file: string; maxBytes: number; keys: KeyState; logger: Logger; observer?: AuditObserver;
}): NexusAudit {
  const writer = new AuditWriter({ file: o.file, maxBytes: o.maxBytes, ...(o.observer ? { observer: o.observer } : {}) });
  const health = auditHealth(o.logger);
  const append = (fields: EntryFields): Promise<void> => writer.append(fields).then(() => health.written(), (e: unknown) => {
    health.failed(e);
    throw e;
  });
  // Entries nobody waits for ride the next intent's flush (AuditWriter.appendDeferred).
  const record = (fields: EntryFields): void => {
    void writer.appendDeferred(fields).then(() => health.written(), (e: unknown) => health.failed(e)).catch(() => undefined);
  };
  // The path's HMAC once per request: its intent and result entries name the same body's path
  // (one HMAC fewer per request). Recomputed after the keys change.
  let keyGeneration = 0;
  const pathHashes = new WeakMap<object, { generation: number; hash: string | undefined }>();
  const hashedPath = (body: unknown): string | undefined => {
    const path = targetPath(body);
    if (path === undefined) return undefined;
    const memo = pathHashes.get(body as object);
    if (memo !== undefined && memo.generation === keyGeneration) return memo.hash;
    const hash = writer.hashPath(path);
    pathHashes.set(body as object, { generation: keyGeneration, hash });
    return hash;
  };
  o.keys.onReady(() => {
    keyGeneration += 1;
    writer.useKeys(new AuditKeys(o.keys.root()));
    record({ type: 'event', event: 'audit.keyed' });
  });
  record({ type: 'event', event: 'audit.opened' });
  const common = (e: { requestId: string; peer: SpiffeId | null; route: string; action: string; decision: string }, body: unknown): EntryFields => {
    return {
      requestId: e.requestId,
      caller: e.peer === null ? null : String(e.peer),
      route: e.route,
      action: e.action,
      path: hashedPath(body),
      decision: e.decision,
    };
  };
  return {
    writer,
    auditor: {
      intent: (e, body) => append({ type: 'request', phase: 'intent', ...common(e, body) }).catch((err: unknown) => {
        throw refusal(err);
      }),
      result: (e) => {
        record({ type: 'request', phase: 'result', ...common(e, e.body), status: e.status, durationMs: e.durationMs });
      },
    },
    event: (name, fields = {}) => {
      record({ type: 'event', event: name, ...fields });
    },
    failure: async () => {
      const cause = health.current();
      if (cause === null) return null;
      if (cause === 'disk_full' && o.file !== '-' && (await freeBytes(o.file)) < AUDIT_RECOVERY_HEADROOM) return cause;
      await append({ type: 'event', event: 'audit.probe' }).catch(() => undefined);
      return health.current();
    },
    close: () => writer.close(),
  };
}
