/**
 * `spike-keeper`: an mTLS server holding exactly one Shamir share, in memory only.
 * It writes nothing to disk, ever (no files are opened for writing; logs go to stdout).
 *
 * Environment: SPIFFE_ENDPOINT_SOCKET, SPIKE_KEEPER_TLS_PORT (default :8443),
 * SPIKE_TRUST_ROOT_KEEPER / _NEXUS / _BOOTSTRAP, SPIKE_SYSTEM_LOG_LEVEL,
 * SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT.
 */
import { loadKeeperConfig, startComponent } from '../config/index.js';
import { fail, installShutdown, processTrimmer } from '../lib/index.js';
import { authorizeIf, createMtlsServer } from '../spiffe/index.js';
import type { OpsServer } from '../ops/index.js';
import { keeperRouter } from './server.js';
import { INTERNAL_ERROR_BODY, MALFORMED_REQUEST_BODY } from '../protocol/index.js';
import { ShareSlot } from './slot.js';
import { AnchorHolder } from './anchor.js';

const USAGE = `usage: spike-keeper

Holds one Shamir share of SPIKE's root key in memory and serves it to SPIKE Nexus over
SPIFFE mTLS. Configuration is by environment (see docs/configuration.md):
  SPIFFE_ENDPOINT_SOCKET      Workload API socket (default unix:///tmp/spire-agent/public/api.sock)
  SPIKE_KEEPER_TLS_PORT       listen address (default :8443)
  SPIKE_TRUST_ROOT_KEEPER, SPIKE_TRUST_ROOT_NEXUS, SPIKE_TRUST_ROOT_BOOTSTRAP  (default spike.ist)
  SPIKE_ALLOW_CORE_DUMPS      true: start even if the core-dump limit cannot be set to 0
  SPIKE_KEEPER_OPS_ADDR       probes and metrics over plain HTTP (unset = off; ":port" = loopback)
`;

export async function main(argv: string[]): Promise<void> {
  const started = await startComponent(argv, {
    name: 'spike-keeper', component: 'keeper', usage: USAGE, loadConfig: loadKeeperConfig,
    isSelf: (ids, id) => ids.isKeeper(id),
    notSelf: 'this process\'s SVID is not a SPIKE Keeper ID (check SPIKE_TRUST_ROOT_KEEPER)',
  });
  if (!started) return;
  const { cfg, ids, source, logger } = started;
  const slot = new ShareSlot({
    onStagedExpired: () => logger.warn({ event: 'staged_share_expired' }, 'a staged Bootstrap share was not committed in time (a failed bootstrap run) and is zeroed'),
  });
  const anchor = new AnchorHolder();
  // The operations listener and its metrics (prom-client) are loaded only when enabled: an
  // idle Keeper keeps to what it uses (issue 17).
  const opsKit = cfg.ops === undefined ? undefined : await import('../ops/index.js');
  const metrics = opsKit?.createMetrics();
  const server = createMtlsServer({
    source,
    authorizeClient: authorizeIf((id) => ids.isNexus(id) || ids.isBootstrap(id)),
    handler: keeperRouter(slot, ids, logger, metrics?.requests, anchor),
    host: cfg.listen.host,
    port: cfg.listen.port,
    headersTimeoutMs: cfg.readHeaderTimeoutMs,
    malformedRequestBody: MALFORMED_REQUEST_BODY,
    internalErrorBody: INTERNAL_ERROR_BODY,
    requestTimeoutMs: 10_000,
    ...cfg.serverLimits,
    logger,
    ...(metrics ? { observer: metrics.tls } : {}),
  });
  metrics?.read({
    tlsConnections: () => ({ verified: server.verified(), handshaking: server.handshaking() }),
    svidExpiry: () => source.getX509Svid().notAfter,
    ready: () => slot.has(),
    shareHeld: () => slot.has(),
  });
  // Ready once it holds a share (the slot only keeps shares it verified).
  const ops: OpsServer | undefined = cfg.ops === undefined || opsKit === undefined ? undefined : opsKit.createOpsServer({
    host: cfg.ops.host, port: cfg.ops.port, logger,
    readiness: () => (slot.has() ? { ready: true, failing: [] } : { ready: false, failing: ['share'] }),
    ...(metrics ? { metrics: metrics.source } : {}),
  });
  try {
    await server.listen();
    await ops?.listen();
  } catch (e) {
    await server.close();
    source.close();
    return fail('spike-keeper', e);
  }
  process.stderr.write(`spike-keeper ready on port ${server.port}\n`);
  if (ops) process.stderr.write(`spike-keeper operations listener on ${ops.url}\n`);
  // Freed native memory given back after bursts (src/lib/malloc-trim.ts).
  const trimmer = processTrimmer(logger);
  installShutdown(logger, async () => {
    trimmer?.stop();
    await ops?.close();
    await server.close();
    slot.clear();
    anchor.clear();
    source.close();
  });
}
