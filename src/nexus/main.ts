/**
 * `spike-nexus`: SPIKE Nexus, the secret store (configuration: docs/configuration.md).
 * Prints `spike-nexus ready on port N` on stderr once it listens (before the root key is
 * recovered: data routes answer `state_not_ready` until then). `spike-nexus backup` and
 * `verify-backup` are one-shot commands beside the server (backup.ts, docs/backup.md).
 */
import fs from 'node:fs';
import { loadNexusConfig, startComponent } from '../config/index.js';
import { fail, installShutdown, processTrimmer, type Logger } from '../lib/index.js';
import { startNexus } from './server.js';
import { markRunning } from './run-marker.js';
import type { MoveStep } from './keys/move.js';
import type { RotationStep } from './keys/rotation.js';
import { runBackup, runVerifyBackup } from './backup.js';
import { isReplacement, recycleOthers, replaceMe, replacementTurn, reportListening, runPrimary, workerConfig, workerId } from './workers/index.js';

const USAGE = `usage: spike-nexus
       spike-nexus backup [--force] <dest-file>   (online copy of the SQLite store; docs/backup.md)
       spike-nexus verify-backup <file>

SPIKE Nexus: versioned secrets, policies and encryption as a service over SPIFFE mTLS.
Configuration is by environment (see docs/configuration.md), e.g.
  SPIFFE_ENDPOINT_SOCKET, SPIKE_NEXUS_TLS_PORT (:8553), SPIKE_NEXUS_BACKEND_STORE (sqlite|lite|memory|postgres),
  SPIKE_NEXUS_KEEPER_PEERS, SPIKE_NEXUS_SHAMIR_SHARES, SPIKE_NEXUS_SHAMIR_THRESHOLD,
  SPIKE_NEXUS_DATA_DIR, SPIKE_NEXUS_DATABASE_URL, SPIKE_TRUST_ROOT_*,
  SPIKE_NEXUS_OPS_ADDR (probes and metrics over plain HTTP; unset = off; ":port" = loopback),
  SPIKE_NEXUS_WORKERS (processes sharing the listener; sqlite or postgres; default 1),
  SPIKE_ALLOW_CORE_DUMPS (true: start even if the core-dump limit cannot be set to 0)
`;

/**
 * TEST-ONLY fault injection for the sharing-move and root-rotation e2e tests (read here only;
 * never set these in a deployment). Steps: after-pending-store, after-pending-push,
 * after-commit (move), after-root-switch, after-promote (rotation).
 * - SPIKE_NEXUS_TEST_CRASH_AT=<step>: the process SIGKILLs itself there (a `kill -9` at
 *   exactly that point);
 * - SPIKE_NEXUS_TEST_HOLD_AT=<step> with SPIKE_NEXUS_TEST_HOLD_FILE=<path>: the first time
 *   the step is reached, Nexus creates the file and waits until the test removes it (the
 *   test kills a Keeper, the database or Nexus meanwhile).
 */
function testFaultPoints(logger: Logger, env = process.env): { onMoveStep?: (step: MoveStep | RotationStep) => void | Promise<void> } {
  const crash = env['SPIKE_NEXUS_TEST_CRASH_AT'];
  const hold = env['SPIKE_NEXUS_TEST_HOLD_AT'];
  const file = env['SPIKE_NEXUS_TEST_HOLD_FILE'];
  if (!crash && !(hold && file)) return {};
  // Loud: a deployment must never run with these (a sharing move can be stopped or crashed).
  logger.error({ alarm: 'test_fault_injection', crashAt: crash ?? null, holdAt: hold ?? null },
    'TEST-ONLY fault injection is on (SPIKE_NEXUS_TEST_*): never set these outside the test suite');
  let held = false;
  return {
    onMoveStep: async (step) => {
      if (step === crash) process.kill(process.pid, 'SIGKILL');
      if (step !== hold || !file || held) return;
      held = true;
      // Created new (never through an existing file or symlink), owner-only; the hold ends
      // when the test removes it, or after HOLD_MAX_MS at the latest.
      fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600));
      const until = Date.now() + HOLD_MAX_MS;
      while (fs.existsSync(file) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    },
  };
}

/** The longest a test hold point waits for its file to be removed. */
const HOLD_MAX_MS = 10 * 60_000;

/** The one-shot subcommands: print the result on stdout, or one line on stderr and exit 1. */
async function subcommand(name: string, run: () => Promise<string> | string): Promise<void> {
  try {
    process.stdout.write(await run());
  } catch (e) {
    fail(`spike-nexus ${name}`, e);
  }
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'backup') return subcommand('backup', () => runBackup(argv.slice(1), process.env));
  if (argv[0] === 'verify-backup') return subcommand('verify-backup', () => runVerifyBackup(argv.slice(1)));
  // Several workers (workers/): the primary only supervises; it never asks for an SVID.
  let primary: Promise<number> | undefined;
  const started = await startComponent(argv, {
    name: 'spike-nexus', component: 'nexus', usage: USAGE, loadConfig: loadNexusConfig,
    isSelf: (ids, id) => ids.isNexus(id),
    notSelf: 'this process\'s SVID is not a SPIKE Nexus ID (check SPIKE_TRUST_ROOT_NEXUS)',
    beforeSource: (cfg, logger) => {
      if (cfg.workers === 1 || workerId() !== undefined) return true;
      primary = runPrimary(cfg, logger);
      markRunning(cfg.dataDir, logger);
      return false;
    },
  });
  if (primary) {
    process.exitCode = await primary;
    return;
  }
  if (!started) return;
  const { ids, source } = started;
  const worker = workerId();
  const cfg = worker === undefined ? started.cfg : workerConfig(started.cfg, worker);
  const logger = worker === undefined ? started.logger : started.logger.child({ worker });
  let nexus;
  try {
    nexus = await startNexus({
      cfg, ids, source, logger, onFatal: (e) => fail('spike-nexus', e), ...testFaultPoints(logger),
      ...(isReplacement() ? { listenWhen: replacementTurn } : {}),
      ...(worker !== undefined ? { othersStale: recycleOthers, selfStale: () => replaceMe('root_rotated_elsewhere') } : {}),
    });
  } catch (e) {
    source.close();
    return fail('spike-nexus', e);
  }
  if (worker !== undefined) reportListening(nexus.server.port, nexus.ops?.listening === true ? nexus.ops.url : undefined);
  else {
    markRunning(cfg.dataDir, logger);
    process.stderr.write(`spike-nexus ready on port ${nexus.server.port}\n`);
    if (nexus.ops) process.stderr.write(`spike-nexus operations listener on ${nexus.ops.url}\n`);
  }
  // Freed native memory (TLS, request bodies) given back after bursts (src/lib/malloc-trim.ts).
  const trimmer = processTrimmer(logger);
  installShutdown(logger, async () => {
    trimmer?.stop();
    await nexus.close();
    source.close();
  });
}
