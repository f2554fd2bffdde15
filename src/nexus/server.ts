/**
 * Nexus wiring: store, key state, policy engine, guarded route table, mTLS listener and
 * Keeper recovery (keys/recovery.ts). The listener comes first: Nexus answers at once, with
 * `state_not_ready` on data routes until the root key is in (SPIKE PR #297 — restore
 * must be reachable while Keepers are gone).
 */
import path from 'node:path';
import type { Recognisers } from '../protocol/index.js';
import { type Route, type RouterHandler, createRouter } from '../http/index.js';
import type { NexusConfig } from '../config/index.js';
import { backoffDelay, type Logger } from '../lib/index.js';
import { KeeperClient } from '../keeper/index.js';
import { authorizeIf, createMtlsServer, type MtlsServer, type X509Source } from '../spiffe/index.js';
import { instrumentStore, openStore, type Store } from '../store/index.js';
import { NexusAuthorizer, nexusGuards } from './authz.js';
import type { NexusContext, RouteModule } from './context.js';
import { KeyState } from './keys/state.js';
import { PolicyEngine, PolicySync } from './policy/index.js';
import { KeeperSync } from './keys/recovery.js';
import { bootstrapRoutes } from './routes/bootstrap.js';
import { ROUTE_MODULES } from './routes/index.js';
import { nexusReadiness, startNexusOps } from './ops.js';
import { createMetrics, type OpsServer } from '../ops/index.js';
import { NO_AUDIT, type NexusAudit, openNexusAudit } from './audit.js';

interface NexusOptions {
  cfg: NexusConfig;
  ids: Recognisers;
  source: X509Source;
  logger: Logger;
  /** Override the store (tests); default: opened from `cfg`. */
  store?: Store;
}

export interface Nexus {
  readonly ctx: NexusContext;
  readonly server: MtlsServer;
  readonly router: RouterHandler;
  /** The operations listener (probes, metrics), when SPIKE_NEXUS_OPS_ADDR is set. */
  readonly ops: OpsServer | undefined;
  close(): Promise<void>;
}

/**
 * Opens the configured store. A shared database that is down at start-up (postgres) is
 * retried with capped backoff instead of exiting, so a Nexus fleet outlives a database
 * failover; a local file that cannot be opened is fatal (it will not fix itself).
 */
async function openWithRetry(cfg: NexusConfig, logger: Logger, onCommitBatch?: (size: number) => void): Promise<Store> {
  const open = (): Promise<Store> => openStore({
    kind: cfg.backend,
    file: cfg.backend === 'sqlite' ? path.join(cfg.dataDir, 'spike.db') : undefined,
    busyTimeoutMs: cfg.dbBusyTimeoutMs,
    defaultMaxVersions: cfg.maxSecretVersions,
    ...(cfg.postgres ?? {}),
    ...(onCommitBatch ? { onCommitBatch } : {}),
    logger,
  });
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (cfg.backend !== 'postgres' || (code !== 'store_unavailable' && code !== 'store_busy')) throw e;
      const wait = backoffDelay(attempt, { initialMs: 250, maxMs: 10_000 });
      logger.warn({ reason: code, retryInMs: wait }, 'database unavailable; retrying');
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export async function startNexus(o: NexusOptions): Promise<Nexus> {
  const { cfg, ids, source, logger } = o;
  // Metrics only with the operations listener that serves them.
  const metrics = cfg.ops === undefined ? undefined : createMetrics();
  const opened = o.store ?? await openWithRetry(cfg, logger, metrics?.commitBatch);
  const store = metrics ? instrumentStore(opened, metrics.store) : opened;
  const keys = new KeyState();
  // The audit trail opens before anything can happen that it must record.
  const audit: NexusAudit | undefined = cfg.auditLog === undefined ? undefined : openNexusAudit({
    file: cfg.auditLog, maxBytes: cfg.auditMaxBytes, keys, logger, ...(metrics ? { observer: metrics.audit } : {}),
  });
  const engine = new PolicyEngine({ logger });
  const authz = new NexusAuthorizer(engine, ids);
  const policies = new PolicySync(store, engine, logger, cfg.backend === 'postgres');
  if (metrics) policies.onReload = metrics.policyReloaded;
  let sync: KeeperSync | undefined;
  let keeperClient: KeeperClient | undefined;
  if (cfg.backend !== 'memory') {
    keeperClient = new KeeperClient({ source, authorizeKeeper: authorizeIf(ids.isKeeper), timeoutMs: 5000 });
    sync = new KeeperSync({
      peers: cfg.keeperPeers,
      threshold: cfg.shamir.threshold,
      shares: cfg.shamir.shares,
      client: keeperClient,
      store,
      keys,
      logger,
      maxBackoffMs: cfg.recoveryMaxIntervalMs,
      pushIntervalMs: cfg.keeperUpdateIntervalMs,
      ...(metrics ? { observer: metrics.recovery } : {}),
      ...(audit ? { audit } : {}),
      notReadyLogIntervalMs: cfg.notReadyLogIntervalMs,
    });
  }
  const ctx: NexusContext = {
    cfg, store, keys, ids, engine, authz, guards: nexusGuards(authz), policies, logger, sync, audit: audit ?? NO_AUDIT,
    ...(metrics ? { onCipherBytes: metrics.cipherBytes } : {}),
  };

  // The readiness gate opens only when the key is in AND the policies are loaded, so a
  // workload never gets a false 401 in the moment after a restart.
  let dataReady = false;
  const loadPolicies = (attempt = 0): void => {
    if (store.kind === 'lite') {
      dataReady = true;
      return;
    }
    policies.reload().then(() => { dataReady = true; }, (e: unknown) => {
      logger.error({ err: (e as { code?: string }).code ?? 'error' }, 'policy load failed; retrying');
      setTimeout(() => loadPolicies(attempt + 1), backoffDelay(attempt, { initialMs: 100, maxMs: 5000 })).unref();
    });
  };
  if (cfg.backend === 'memory') {
    keys.installEphemeral();
    await policies.reload();
    dataReady = true;
    logger.warn('memory backend: nothing is persisted and there is no root key (development only)');
  } else {
    keys.onReady(() => loadPolicies());
  }

  const routes: Route[] = [...bootstrapRoutes(ctx)];
  for (const m of ROUTE_MODULES as readonly RouteModule[]) routes.push(...m(ctx));
  const router = createRouter(routes, {
    isReady: () => dataReady && keys.isReady(),
    logger,
    maxBodyBytes: cfg.maxBodyBytes,
    ...(metrics ? { observer: metrics.requests } : {}),
    ...(audit ? { auditor: audit.auditor } : {}),
  });
  const server = createMtlsServer({
    source,
    // Only a shared database (postgres) can change policies behind this process's back;
    // elsewhere the generation check is a no-op, so the request goes straight to the router.
    handler: cfg.backend === 'postgres'
      ? async (req, res, peer) => {
        // On failure the engine is emptied (default deny); routes that need the store
        // answer 503 by themselves, and policy-based cipher calls are denied.
        await policies.ensureFresh().catch(() => undefined);
        await router(req, res, peer);
      }
      : router,
    host: cfg.listen.host,
    port: cfg.listen.port,
    headersTimeoutMs: cfg.readHeaderTimeoutMs,
    ...cfg.serverLimits,
    logger,
    ...(metrics ? { observer: metrics.tls } : {}),
  });
  await server.listen();
  metrics?.read({
    tlsConnections: () => ({ verified: server.verified(), handshaking: server.handshaking() }),
    svidExpiry: () => source.getX509Svid().notAfter,
    rootKeyPresent: () => keys.isReady(),
    ready: () => keys.isReady() && dataReady,
    epoch: () => keys.sharing()?.epoch,
    policyCount: () => engine.size,
  });
  let ops: OpsServer | undefined;
  try {
    ops = await startNexusOps(ctx, nexusReadiness(ctx, () => dataReady), metrics?.source);
  } catch (e) {
    await server.close();
    await audit?.close();
    throw e;
  }
  sync?.start();

  return {
    ctx,
    server,
    router,
    ops,
    async close() {
      await ops?.close();
      await server.close();
      await sync?.stop();
      await keeperClient?.close();
      await store.close();
      await audit?.close();
      keys.clear();
    },
  };
}
