/**
 * `spike-bootstrap -init`: SPIKE's one-shot initializer (run.ts has the logic).
 *
 * Exit codes: 0 initialised, or nothing to do (memory/lite backend, already initialised);
 * 1 any failure, with one readable line on stderr. `-init` is required, as in SPIKE.
 */
import { loadTrustRoots, recognisers } from '../protocol/index.js';
import { loadBootstrapConfig } from '../config/index.js';
import { createLogger } from '../lib/index.js';
import { hardenServer } from '../lib/index.js';
import { fail } from '../lib/index.js';
import { authorizeIf, createMtlsDispatcher, WorkloadX509Source } from '../spiffe/index.js';
import { KeeperClient } from '../keeper/index.js';
import { runBootstrap } from './run.js';

const USAGE = `usage: spike-bootstrap -init

Creates SPIKE's root key once, splits it into Shamir shares, gives every Keeper its
share and verifies that SPIKE Nexus rebuilt the key. Does nothing when Nexus is already
initialised (the key is never replaced). Configuration by environment:
  SPIKE_NEXUS_KEEPER_PEERS, SPIKE_NEXUS_SHAMIR_SHARES, SPIKE_NEXUS_SHAMIR_THRESHOLD,
  SPIKE_NEXUS_API_URL, SPIKE_NEXUS_BACKEND_STORE, SPIFFE_ENDPOINT_SOCKET,
  SPIKE_BOOTSTRAP_* (timeouts and retries), SPIKE_TRUST_ROOT_*, SPIKE_ALLOW_CORE_DUMPS
  (see docs/configuration.md)
`;

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  if (!argv.includes('-init') && !argv.includes('--init')) {
    process.stderr.write('spike-bootstrap: the -init flag is required\n');
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ component: 'bootstrap' });
  // Before any key material exists in this process (ENV-08).
  if (!hardenServer('spike-bootstrap', logger, fail)) return;
  let cfg, ids;
  try {
    cfg = loadBootstrapConfig(process.env);
    ids = recognisers(loadTrustRoots(process.env));
  } catch (e) {
    return fail('spike-bootstrap', e);
  }
  if (cfg.backend === 'memory' || cfg.backend === 'lite') {
    process.stderr.write(`spike-bootstrap: backend '${cfg.backend}' needs no bootstrap; nothing to do\n`);
    return;
  }
  if (cfg.timeoutMs > 0) {
    setTimeout(() => {
      process.stderr.write('spike-bootstrap: SPIKE_BOOTSTRAP_TIMEOUT reached\n');
      process.exit(1);
    }, cfg.timeoutMs).unref();
  }
  let source: WorkloadX509Source;
  try {
    source = await WorkloadX509Source.open({ endpoint: cfg.endpointSocket, timeoutMs: cfg.sourceTimeoutMs, logger });
  } catch (e) {
    return fail('spike-bootstrap', e);
  }
  const keepers = new KeeperClient({ source, authorizeKeeper: authorizeIf(ids.isKeeper), timeoutMs: 10_000 });
  const nexus = createMtlsDispatcher({ source, authorizeServer: authorizeIf(ids.isNexus), connections: 2 });
  try {
    if (!ids.isBootstrap(source.getX509Svid().id)) {
      throw new Error('this process\'s SVID is not a SPIKE Bootstrap ID (check SPIKE_TRUST_ROOT_BOOTSTRAP)');
    }
    const outcome = await runBootstrap({
      config: cfg, keepers, nexus, logger,
      say: (line) => process.stderr.write(`spike-bootstrap: ${line}\n`),
    });
    logger.info({ outcome }, 'bootstrap finished');
  } catch (e) {
    fail('spike-bootstrap', e);
  } finally {
    await keepers.close();
    await nexus.close();
    source.close();
  }
}
