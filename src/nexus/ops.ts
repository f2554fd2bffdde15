/**
 * Nexus on the operations listener (src/ops): readiness from six conditions, each named
 * in a 503 body when it fails — `root_key` (the root key is not installed), `store` (the
 * store does not answer a one-row read of a system record that does not exist, probed at
 * most once a second with a 2 s deadline), `store_stopped` (a failed sync or checkpoint of
 * the SQLite log stopped the store: restart Nexus), `policies` (not loaded yet),
 * `audit_<cause>` (`audit_disk_full`, `audit_read_only`, `audit_io_error`: the audit log
 * cannot be written, so every request is refused; re-tried at most once a second), and
 * `rollback_check` (the start-up rollback check runs) / `rollback` (a rollback was detected
 * and not yet accepted: docs/key-lifecycle.md). Nothing else leaks.
 */
import { cachedProbe, createOpsServer, type MetricsSource, type OpsServer, type Readiness } from '../ops/index.js';
import type { AuditFailureCause } from '../audit/index.js';
import { backoffDelay } from '../lib/index.js';
import { storeFailure } from '../store/index.js';
import type { NexusContext } from './context.js';

/** While the operations port stays taken, its ERROR line repeats at most this often. */
const TAKEN_LOG_INTERVAL_MS = 60_000;

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
    if (storeFailure(ctx.store)?.stopped === true) failing.push('store_stopped');
    if (!policiesLoaded()) failing.push('policies');
    if (auditWrites !== undefined && !(await auditWrites())) failing.push(`audit_${auditCause ?? 'io_error'}`);
    const cause = rollback();
    if (cause !== undefined) failing.push(cause);
    return { ready: failing.length === 0, failing };
  };
}

/**
 * Starts the operations listener when `SPIKE_NEXUS_OPS_ADDR` is set; undefined otherwise. A
 * taken port fails the start, unless `retryTaken` (a replacement worker: the Nexus serves
 * already, and a port some other program grabbed in the moment must not stop it): then one
 * ERROR line, and the port is tried again in the background (1 s, up to every 30 s) until
 * it is bound or the listener is closed.
 */
export async function startNexusOps(ctx: NexusContext, readiness: () => Promise<Readiness>, metrics: MetricsSource | undefined, retryTaken = false): Promise<OpsServer | undefined> {
  const addr = ctx.cfg.ops;
  if (addr === undefined) return undefined;
  const ops = createOpsServer({ host: addr.host, port: addr.port, logger: ctx.logger, readiness, ...(metrics ? { metrics } : {}) });
  try {
    await ops.listen();
    return ops;
  } catch (e) {
    if (!retryTaken || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
  }
  let lastLine = 0;
  const taken = (): void => {
    if (Date.now() - lastLine < TAKEN_LOG_INTERVAL_MS) return;
    lastLine = Date.now();
    ctx.logger.error({ port: addr.port, code: 'EADDRINUSE' }, 'operations port taken (by another program?): no probes or metrics from this worker until it is free; retrying');
  };
  taken();
  let closed = false;
  let bound = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = (attempt: number): void => {
    timer = setTimeout(() => {
      ops.listen().then(() => {
        if (closed) return void ops.close();
        bound = true;
        ctx.logger.info({ port: addr.port }, 'operations listener bound');
      }, () => {
        if (closed) return;
        taken();
        retry(attempt + 1);
      });
    }, backoffDelay(attempt, { initialMs: 1000, maxMs: 30_000 }));
    timer.unref();
  };
  retry(0);
  return {
    get port() { return ops.port; },
    get url() { return ops.url; },
    get listening() { return bound && !closed; },
    listen: () => ops.listen(),
    close: () => {
      closed = true;
      clearTimeout(timer);
      return ops.close();
    },
  };
}
