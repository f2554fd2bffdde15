/**
 * `spike-nexus`: SPIKE Nexus, the secret store (configuration: docs/configuration.md).
 * Prints `spike-nexus ready on port N` on stderr once it listens (before the root key is
 * recovered: data routes answer `state_not_ready` until then).
 */
import { loadTrustRoots, recognisers } from '../protocol/index.js';
import { loadNexusConfig } from '../config/index.js';
import { createLogger } from '../lib/index.js';
import { hardenServer } from '../lib/index.js';
import { fail, installShutdown } from '../lib/index.js';
import { WorkloadX509Source } from '../spiffe/index.js';
import { startNexus } from './server.js';

const USAGE = `usage: spike-nexus

SPIKE Nexus: versioned secrets, policies and encryption as a service over SPIFFE mTLS.
Configuration is by environment (see docs/configuration.md), e.g.
  SPIFFE_ENDPOINT_SOCKET, SPIKE_NEXUS_TLS_PORT (:8553), SPIKE_NEXUS_BACKEND_STORE (sqlite|lite|memory|postgres),
  SPIKE_NEXUS_KEEPER_PEERS, SPIKE_NEXUS_SHAMIR_SHARES, SPIKE_NEXUS_SHAMIR_THRESHOLD,
  SPIKE_NEXUS_DATA_DIR, SPIKE_NEXUS_DATABASE_URL, SPIKE_TRUST_ROOT_*,
  SPIKE_ALLOW_CORE_DUMPS (true: start even if the core-dump limit cannot be set to 0)
`;

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const logger = createLogger({ component: 'nexus' });
  // Before any key material exists in this process (ENV-08).
  if (!hardenServer('spike-nexus', logger, fail)) return;
  let cfg, ids;
  try {
    cfg = loadNexusConfig(process.env);
    ids = recognisers(loadTrustRoots(process.env));
  } catch (e) {
    return fail('spike-nexus', e);
  }
  let source: WorkloadX509Source;
  try {
    source = await WorkloadX509Source.open({ endpoint: cfg.endpointSocket, timeoutMs: cfg.sourceTimeoutMs, logger });
  } catch (e) {
    return fail('spike-nexus', e);
  }
  if (!ids.isNexus(source.getX509Svid().id)) {
    source.close();
    return fail('spike-nexus', new Error('this process\'s SVID is not a SPIKE Nexus ID (check SPIKE_TRUST_ROOT_NEXUS)'));
  }
  let nexus;
  try {
    nexus = await startNexus({ cfg, ids, source, logger });
  } catch (e) {
    source.close();
    return fail('spike-nexus', e);
  }
  process.stderr.write(`spike-nexus ready on port ${nexus.server.port}\n`);
  installShutdown(logger, async () => {
    await nexus.close();
    source.close();
  });
}
