/**
 * `spike-bootstrap -init`: SPIKE's one-shot initializer (run.ts has the logic).
 *
 * Exit codes: 0 initialised, or nothing to do (memory/lite backend, already initialised);
 * 1 any failure, with one readable line on stderr. `-init` is required, as in SPIKE.
 */
import { loadBootstrapConfig, startComponent } from '../config/index.js';
import { fail } from '../lib/index.js';
import { authorizeIf, createMtlsHttpsClient } from '../spiffe/index.js';
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
  const help = ['--help', '-h', '--version', '-V'].some((a) => argv.includes(a));
  if (!help && argv.length === 0) {
    process.stderr.write('spike-bootstrap: the -init flag is required\n');
    process.exitCode = 1;
    return;
  }
  const started = await startComponent(argv, {
    name: 'spike-bootstrap', component: 'bootstrap', usage: USAGE, flags: ['-init', '--init'], loadConfig: loadBootstrapConfig,
    isSelf: (ids, id) => ids.isBootstrap(id),
    notSelf: 'this process\'s SVID is not a SPIKE Bootstrap ID (check SPIKE_TRUST_ROOT_BOOTSTRAP)',
    beforeSource: (cfg) => {
      if (cfg.backend === 'memory' || cfg.backend === 'lite') {
        process.stderr.write(`spike-bootstrap: backend '${cfg.backend}' needs no bootstrap; nothing to do\n`);
        return false;
      }
      if (cfg.timeoutMs > 0) {
        setTimeout(() => {
          process.stderr.write('spike-bootstrap: SPIKE_BOOTSTRAP_TIMEOUT reached\n');
          process.exit(1);
        }, cfg.timeoutMs).unref();
      }
      return true;
    },
  });
  if (!started) return;
  const { cfg, ids, source, logger } = started;
  const keepers = new KeeperClient({ source, authorizeKeeper: authorizeIf(ids.isKeeper), timeoutMs: 10_000, shareRecipients: cfg.keeperPeers });
  const nexus = createMtlsHttpsClient({ source, authorizeServer: authorizeIf(ids.isNexus), connections: 2 });
  try {
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
