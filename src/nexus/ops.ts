/**
 * Nexus on the operations listener (src/ops): readiness from five conditions, each named
 * in a 503 body when it fails — `root_key` (the root key is not installed), `store` (the
 * store does not answer a one-row read of a system record that does not exist, probed at
 * most once a second with a 2 s deadline), `policies` (not loaded yet),
 * `audit_<cause>` (`audit_disk_full`, `audit_read_only`, `audit_io_error`: the audit log
 * cannot be written, so every request is refused; re-tried at most once a second), and
 * `rollback_check` (the start-up rollback check runs) / `rollback` (a rollback was detected
 * and not yet accepted: docs/key-lifecycle.md). Nothing else leaks.
 */
import { cachedProbe, createOpsServer, type MetricsSource, type OpsServer, type Readiness } from '../ops/index.js';
import type { AuditFailureCause } from '../audit/index.js';
import type { NexusContext } from './context.js';

/** A system-record key that is never written: reading it touches one index entry. */
const PROBE_KEY = 'ops.readiness.probe';

export function nexusReadiness(ctx: NexusContext, policiesLoaded: () => boolean, rollback: () => string | undefined = () => undefined): () => Promise<Readiness> {
  const storeAnswers = cachedProbe(() => ctx.store.getSystem(PROBE_KEY));
  const auditFailure = ctx.audit.failure?.bind(ctx.audit);
  // A failing check (resolves to a cause) counts as "not answered" for the cache: retried ≤ 1/s.
  let auditCause: AuditFailureCause | null = null;
  const auditWrites = auditFailure === undefined ? undefined : cachedProbe(async () => {
    auditCause = await auditFailure();
    if (auditCause !== null) throw new Error(auditCause);
  });
  return async () => {
    const failing: string[] = [];
    if (!ctx.keys.isReady()) failing.push('root_key');
    if (!(await storeAnswers())) failing.push('store');
    if (!policiesLoaded()) failing.push('policies');
    if (auditWrites !== undefined && !(await auditWrites())) failing.push(`audit_${auditCause ?? 'io_error'}`);
    const cause = rollback();
    if (cause !== undefined) failing.push(cause);
    return { ready: failing.length === 0, failing };
  };
}

/** Starts the operations listener when `SPIKE_NEXUS_OPS_ADDR` is set; undefined otherwise. */
export async function startNexusOps(ctx: NexusContext, readiness: () => Promise<Readiness>, metrics: MetricsSource | undefined): Promise<OpsServer | undefined> {
  const addr = ctx.cfg.ops;
  if (addr === undefined) return undefined;
  const ops = createOpsServer({ host: addr.host, port: addr.port, logger: ctx.logger, readiness, ...(metrics ? { metrics } : {}) });
  await ops.listen();
  return ops;
}
