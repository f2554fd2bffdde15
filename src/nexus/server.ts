/**
 * Nexus wiring: store, key state, policy engine, guarded route table, mTLS listener and
 * Keeper recovery (keys/recovery.ts). The listener comes first: Nexus answers at once, with
 * `state_not_ready` on data routes until the root key is in (SPIKE PR #297 — restore
 * must be reachable while Keepers are gone).
 */
import { INTERNAL_ERROR_BODY, MALFORMED_REQUEST_BODY, type Recognisers } from '../protocol/index.js';
import { type Route, type RouterHandler, createRouter } from '../http/index.js';
import type { NexusConfig } from '../config/index.js';
import { backoffDelay, spendTurnWork, type Logger } from '../lib/index.js';
import { KeeperClient } from '../keeper/index.js';
import { authorizeIf, createMtlsServer, type MtlsServer, type X509Source } from '../spiffe/index.js';
import { createStore, custodyOf, instrumentStore, openStore, Reencryptor, type Store } from '../store/index.js';
import { RootRotation, type RotationStep } from './keys/rotation.js';
import { NexusAuthorizer, nexusGuards, nexusPacer } from './authz.js';
import type { NexusContext, RouteModule } from './context.js';
import { KeyState } from './keys/state.js';
import { PolicyEngine, PolicySync } from './policy/index.js';
import { KeeperSync } from './keys/recovery.js';
import { KeeperProbe } from './keys/probe.js';
import { RollbackGuard } from './anchor/index.js';
import { SharingMover, type MoveStep } from './keys/move.js';
import { SharingTasks } from './keys/tasks.js';
import { bootstrapRoutes } from './routes/bootstrap.js';
import { ROUTE_MODULES, policyCheckUnavailable } from './routes/index.js';
import { nexusReadiness, startNexusOps } from './ops.js';
import { createMetrics, type OpsServer } from '../ops/index.js';
import { NO_AUDIT, type NexusAudit, openNexusAudit } from './audit.js';
import { freshBeforeDecision, freshRequestHandler } from './freshness.js';
import { denialLog } from './denial-log.js';
import { rejoinAfterRotation } from './rejoin.js';
import { initWithRetry, storeOptions } from './store-open.js';


interface NexusOptions {
  cfg: NexusConfig;
  ids: Recognisers;
  source: X509Source;
  logger: Logger;
  /** Override the store (tests); default: opened from `cfg`. */
  store?: Store;
  /** A store failure that will not fix itself after the listener is up (postgres schema); default: logged. */
  onFatal?: (e: unknown) => void;
  /** Called after each step of a sharing move or rotation (the entry's test-only fault points). */
  onMoveStep?: (step: MoveStep | RotationStep) => void | Promise<void>;
  /**
   * Listen only once this resolves; it is given "root key and policies are in" to poll (a
   * replacement worker, workers/: the other workers serve meanwhile). Default: at once.
   */
  listenWhen?: (servable: () => boolean) => Promise<void>;
  /**
   * Several workers: an operator action here (root rotation, accepted rollback) left the other
   * workers' per-process key state stale; `why` names it.
   */
  othersStale?: (why: 'root_rotation' | 'rollback_accepted') => void;
  /** Several workers: another worker rotated the root key, this one holds the old key (replace it). Default: recover the new key in-process (rejoin.ts). */
  selfStale?: () => void;
}

export interface Nexus {
  readonly ctx: NexusContext;
  readonly server: MtlsServer;
  readonly router: RouterHandler;
  /** The operations listener (probes, metrics), when SPIKE_NEXUS_OPS_ADDR is set. */
  readonly ops: OpsServer | undefined;
  close(): Promise<void>;
}

export async function startNexus(o: NexusOptions): Promise<Nexus> {
  const { cfg, ids, source, logger } = o;
  // Metrics only with the operations listener that serves them.
  const metrics = cfg.ops === undefined ? undefined : createMetrics();
  // postgres: the store object now, its schema (the first database contact) after the
  // listener is up — Nexus answers "not ready" while the database is down (initWithRetry).
  let storeOpen = true;
  let pendingInit: (() => Promise<void>) | undefined;
  let opened: Store;
  if (o.store) opened = o.store;
  else if (cfg.backend === 'postgres') {
    const created = createStore({ ...storeOptions(cfg, logger), kind: 'postgres' });
    opened = created.store;
    pendingInit = created.init;
    storeOpen = false;
  } else opened = await openStore(storeOptions(cfg, logger, metrics?.commitBatch));
  const store = metrics ? instrumentStore(opened, metrics.store) : opened;
  const keys = new KeyState();
  // The audit trail opens before anything can happen that it must record.
  const audit: NexusAudit | undefined = cfg.auditLog === undefined ? undefined : openNexusAudit({
    file: cfg.auditLog, maxBytes: cfg.auditMaxBytes, keys, logger, ...(metrics ? { observer: metrics.audit } : {}),
  });
  // Costly pattern work is paced per turn of the event loop (FI-13; policy/pacer.ts).
  const engine = new PolicyEngine({ logger, onPatternWork: spendTurnWork });
  const pacer = nexusPacer(engine, ids);
  // Another process may change policies: another instance on postgres, another worker (workers/).
  const sharedStore = cfg.backend === 'postgres' || cfg.workers > 1;
  const policies = new PolicySync(store, engine, logger, sharedStore);
  // While the policies cannot be checked for freshness, policy-based requests answer 503
  // with the cause (never a 401 that reads as "not allowed"); they are still never allowed.
  const authz = new NexusAuthorizer(engine, ids, () => {
    const failure = policies.failure();
    return failure === undefined ? undefined : policyCheckUnavailable(failure);
  });
  if (metrics) policies.onReload = metrics.policyReloaded;
  let sync: KeeperSync | undefined;
  let keeperClient: KeeperClient | undefined;
  let rollback: RollbackGuard | undefined;
  let probe: KeeperProbe | undefined;
  let mover: SharingMover | undefined;
  let tasks: SharingTasks | undefined;
  let rejoin = (): void => undefined;
  if (cfg.backend !== 'memory') {
    keeperClient = new KeeperClient({ source, authorizeKeeper: authorizeIf(ids.isKeeper), timeoutMs: 5000, shareRecipients: cfg.keeperPeers });
    // Rollback detection where the store persists (sqlite, postgres): docs/key-lifecycle.md.
    if (store.anchor) {
      rollback = new RollbackGuard({
        anchor: store.anchor, keys, peers: cfg.keeperPeers, client: keeperClient, logger, audit: audit ?? NO_AUDIT,
        ...(metrics ? { observer: metrics.anchor } : {}),
        rootMovedOn: () => custodyOf(store)?.rootMovedOn() ?? Promise.resolve(false),
        onStale: () => (o.selfStale ?? rejoin)(),
        // Another instance accepted the rollback: the store went back, its policies are in force.
        onAcceptedElsewhere: () => policies.reload().catch((e: unknown) => policies.failClosed(0, e)),
        checkWindowMs: cfg.keyTimers.rollbackCheckWindowMs,
        checkMaxMs: cfg.keyTimers.rollbackCheckMaxMs,
      });
    }
    const guard = rollback;
    if (guard) policies.beforeGoingBack = () => guard.lookNow();
    if (cfg.acceptUntaggedSharing) {
      logger.warn({ setting: 'SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING' }, 'a key sharing record without an integrity tag will be adopted (and tagged) if it names the configured Keepers: remove this setting once the upgrade start is done');
    }
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
      acceptUntaggedSharing: cfg.acceptUntaggedSharing,
      onPushed: (pos) => void guard?.pusher?.pushTo(pos),
    });
    const keeperSync = sync;
    // A lone process whose root key another one rotated away recovers the new one (rejoin.ts).
    if (guard) rejoin = rejoinAfterRotation({ keys, store, sync, guard, logger, audit: audit ?? NO_AUDIT });
    probe = new KeeperProbe({
      peers: cfg.keeperPeers, client: keeperClient, keys, logger, intervalMs: cfg.keeperProbeIntervalMs,
      pushTo: (pos) => keeperSync.pushTo(pos),
      onStatus: (pos, st) => guard?.keeperStatus(pos, st),
      moving: () => mover?.inFlight(),
    });
    // Not with lite: its sharing record lives in memory only (routes/sharing.ts `movable`).
    if (cfg.backend !== 'lite') mover = new SharingMover({
      store, keys, client: keeperClient, logger, shared: sharedStore, ...(audit ? { audit } : {}), ...(o.onMoveStep ? { onStep: o.onMoveStep } : {}),
      leaseTtlMs: cfg.keyTimers.moveLeaseTtlMs,
      initialBackoffMs: cfg.keyTimers.moveKeeperRetryInitialMs, maxBackoffMs: cfg.keyTimers.moveKeeperRetryMaxMs,
    });
    if (mover) tasks = new SharingTasks({
      mover, keys, logger, refreshIntervalMs: cfg.shareRefreshIntervalMs,
      configured: { threshold: cfg.shamir.threshold, shares: cfg.shamir.shares, peers: cfg.keeperPeers },
      ...(guard ? { mayRun: () => guard.serving() } : {}),
    });
  }
  // Re-encryption resumes after every unlock (a crash mid-run leaves older key ids behind).
  const reencrypt = new Reencryptor(() => custodyOf(store), { ratePerSecond: cfg.reencryptRate, logger });
  const rotation = cfg.backend === 'sqlite' || cfg.backend === 'postgres'
    ? new RootRotation({
      store, keys, logger, reencrypt, ...(mover ? { move: mover.forRotation() } : {}), ...(audit ? { audit } : {}),
      ...(rollback ? { afterSwitch: () => rollback!.rekey() } : {}), ...(o.onMoveStep ? { onStep: o.onMoveStep } : {}),
    })
    : undefined;
  const ctx: NexusContext = {
    cfg, store, keys, ids, engine, pacer, authz, guards: nexusGuards(authz), policies, logger, sync, audit: audit ?? NO_AUDIT, rollback,
    ...(mover ? { mover } : {}),
    ...(rotation ? { rotation } : {}),
    ...(metrics ? { onCipherBytes: metrics.cipherBytes } : {}),
    ...(o.othersStale ? { othersStale: o.othersStale } : {}),
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
    keys.onReady(() => {
      loadPolicies();
      const custody = custodyOf(store);
      if (custody) custody.onRotated = () => reencrypt.kick();
      // The rollback check runs before anything serves or pushes an anchor; re-encryption
      // (a store write) waits for it and does not run while a rollback is refused.
      void (rollback ? rollback.start() : Promise.resolve()).then(() => {
        if (rollback?.state !== 'refused') reencrypt.kick();
      });
    });
  }
  const rollbackServing = (): boolean => rollback === undefined || rollback.serving();
  const servable = (): boolean => storeOpen && dataReady && keys.isReady() && rollbackServing();

  const routes: Route[] = [...bootstrapRoutes(ctx)];
  for (const m of ROUTE_MODULES as readonly RouteModule[]) routes.push(...m(ctx));
  const denials = denialLog(logger);
  const router = createRouter(routes, {
    isReady: servable,
    notReadyError: () => rollback?.refusal(),
    logger,
    maxBodyBytes: cfg.maxBodyBytes,
    observer: denials.observe(metrics?.requests),
    beforeDecision: sharedStore ? freshBeforeDecision(pacer.beforeDecision, policies) : pacer.beforeDecision,
    ...(audit ? { auditor: audit.auditor } : {}),
  });
  const server = createMtlsServer({
    source,
    malformedRequestBody: MALFORMED_REQUEST_BODY,
    internalErrorBody: INTERNAL_ERROR_BODY,
    // Only a shared database (postgres, or a SQLite file several workers write) can change
    // policies behind this process's back; elsewhere the generation check is a no-op, so the
    // request goes straight to the router. One deadline per request covers the check and (on
    // postgres) every store call.
    handler: sharedStore
      ? freshRequestHandler(router, policies, cfg.postgres?.operationTimeoutMs ?? cfg.dbBusyTimeoutMs)
      : router,
    host: cfg.listen.host,
    port: cfg.listen.port,
    headersTimeoutMs: cfg.readHeaderTimeoutMs,
    requestTimeoutMs: cfg.requestTimeoutMs,
    ...cfg.serverLimits,
    logger,
    ...(metrics ? { observer: metrics.tls } : {}),
  });
  let closed = false;
  const startBackground = (): void => {
    probe?.start();
    tasks?.start();
    if (pendingInit === undefined) sync?.start();
    else {
      const onFatal = o.onFatal ?? ((e: unknown) => logger.error({ err: (e as { code?: string }).code ?? 'error' }, 'the database cannot be used; not ready'));
      void initWithRetry(pendingInit, logger, () => closed, onFatal).then((ok) => {
        if (!ok || closed) return;
        storeOpen = true;
        logger.info('database schema ready');
        sync?.start();
      });
    }
  };
  if (o.listenWhen !== undefined) {
    startBackground();
    await o.listenWhen(servable);
  }
  await server.listen();
  metrics?.read({
    tlsConnections: () => ({ verified: server.verified(), handshaking: server.handshaking() }),
    svidExpiry: () => source.getX509Svid().notAfter,
    rootKeyPresent: () => keys.isReady(),
    ready: servable,
    epoch: () => keys.sharing()?.epoch,
    policyCount: () => engine.size,
    keyring: () => {
      const c = custodyOf(store);
      if (!c) return undefined;
      const p = reencrypt.progress();
      const ring = c.keyring.storage;
      return {
        storageGenerations: ring.ids().length, storageKeyId: ring.current, cipherVersion: c.keyring.cipher.current,
        storageSeals: ring.reserved(ring.current), cipherSeals: c.keyring.cipher.reserved(c.keyring.cipher.current),
        rewritten: p.rewritten, running: p.running,
      };
    },
  });
  let ops: OpsServer | undefined;
  // A replacement worker (it waits to listen: `listenWhen`) keeps going if its operations port
  // was taken meanwhile, and retries it; anywhere else a taken port fails the start.
  try {
    ops = await startNexusOps(ctx, nexusReadiness(ctx, () => storeOpen && dataReady, () => rollback?.readinessCause()), metrics?.source, o.listenWhen !== undefined);
  } catch (e) {
    await server.close();
    await audit?.close();
    throw e;
  }
  if (o.listenWhen === undefined) startBackground();

  return {
    ctx,
    server,
    router,
    ops,
    async close() {
      closed = true;
      tasks?.stop();
      denials.close();
      await ops?.close();
      await server.close();
      await probe?.stop();
      await rollback?.stop();
      await sync?.stop();
      await reencrypt.stop();
      await keeperClient?.close();
      await store.close();
      await audit?.close();
      keys.clear();
    },
  };
}
