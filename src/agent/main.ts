/**
 * `spike-agent`: the embedded dev Workload API server (see `server.ts`). Reads a YAML/JSON
 * config file and/or flags, loads or creates the dev CA, opens one socket per identity, then
 * prints exactly `spike-agent ready` on stderr. `spike-agent fetch-x509 …` instead writes one
 * caller's SVID and bundle as PEM files (fetch-x509.ts). Logs are JSON lines on stdout. SIGTERM/SIGINT
 * close the sockets (removing the files) and exit 0.
 */
import { Command, CommanderError } from 'commander';
import { SpikeError, createLogger, packageVersion, type Logger } from '../lib/index.js';
import { DevCa } from './ca.js';
import { AGENT_DEFAULTS, parseIdentityFlag, readConfigFile, resolveConfig, type AgentConfig, type AgentConfigInput } from './config.js';
import { fetchX509Main } from './fetch-x509.js';
import { WorkloadApiServer } from './server.js';

const READY_LINE = 'spike-agent ready';

const HELP_AFTER = `
Configuration file (YAML or JSON; flags override its values, --identity adds to its list):

  trustDomain: spike.ist        # default ${AGENT_DEFAULTS.trustDomain}
  stateDir: ./.spike/agent      # CA key (ca.key, PKCS#8 DER, 0600) and cert (ca.crt); 0700 folder
                                # the agent creates (agent-state.marker); any other folder is refused
  socketDir: ./.spike/sockets   # one <name>.sock per identity (0700 folder, 0600 sockets)
  svidTtl: 1h                   # SVID lifetime, Go-style duration (500ms, 30s, 5m, 1h); re-issued at half-life
  identities:
    - name: nexus
      spiffeId: spiffe://spike.ist/spike/nexus
    - name: pilot
      spiffeId: spiffe://spike.ist/spike/pilot/role/superuser

Whoever can open <socketDir>/<name>.sock receives that identity's X.509-SVID: point a
workload at it with SPIFFE_ENDPOINT_SOCKET=unix://<socketDir>/<name>.sock.
Relative folders resolve against the current directory. The CA is reused across restarts.

Subcommand:
  spike-agent fetch-x509 --socket <sock> --write <dir>   write svid.0.pem, svid.0.key (0600)
      and bundle.0.pem from a Workload API socket (see spike-agent fetch-x509 --help)

Example:
  spike-agent --socket-dir "$HOME/.spike-agent/sockets" \\
    --identity nexus=spiffe://spike.ist/spike/nexus \\
    --identity pilot=spiffe://spike.ist/spike/pilot/role/superuser

When every socket listens, "${READY_LINE}" is printed on stderr. Logs: JSON lines on stdout
(level from SPIKE_SYSTEM_LOG_LEVEL). SIGTERM/SIGINT remove the sockets and exit 0.
`;

interface Flags {
  config?: string;
  trustDomain?: string;
  stateDir?: string;
  socketDir?: string;
  svidTtl?: string;
  identity?: string[];
}

function buildCommand(): Command {
  return new Command()
    .name('spike-agent')
    .description('Development SPIFFE Workload API server: one unix socket per identity, SVIDs from a local P-256 CA.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--config <file>', 'YAML or JSON configuration file')
    .option('--trust-domain <name>', `trust domain (default ${AGENT_DEFAULTS.trustDomain})`)
    .option('--state-dir <dir>', `folder of the CA key and certificate (default ${AGENT_DEFAULTS.stateDir})`)
    .option('--socket-dir <dir>', `folder of the identity sockets (default ${AGENT_DEFAULTS.socketDir})`)
    .option('--svid-ttl <duration>', `SVID lifetime, e.g. 30s, 5m, 1h (default ${AGENT_DEFAULTS.svidTtl})`)
    .option('--identity <name=spiffe-id>', 'serve this identity on <socket-dir>/<name>.sock (repeatable)', (v: string, acc: string[] | undefined) => [...(acc ?? []), v])
    .addHelpText('after', HELP_AFTER)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
}

/** Parses argv into a validated configuration. Throws CommanderError or AgentConfigError. */
export function parseAgentArgs(argv: string[], cwd = process.cwd()): AgentConfig {
  const cmd = buildCommand();
  cmd.parse(argv, { from: 'user' });
  const f = cmd.opts<Flags>();
  const file: AgentConfigInput = f.config !== undefined ? readConfigFile(f.config) : {};
  const flags: AgentConfigInput = {};
  if (f.trustDomain !== undefined) flags.trustDomain = f.trustDomain;
  if (f.stateDir !== undefined) flags.stateDir = f.stateDir;
  if (f.socketDir !== undefined) flags.socketDir = f.socketDir;
  if (f.svidTtl !== undefined) flags.svidTtl = f.svidTtl;
  if (f.identity !== undefined) flags.identities = f.identity.map(parseIdentityFlag);
  return resolveConfig(file, flags, cwd);
}

interface RunningAgent {
  config: AgentConfig;
  ca: DevCa;
  server: WorkloadApiServer;
  close(): Promise<void>;
}

/** Starts the agent in this process (used by `main` and usable from tests or `spike-dev`). */
async function startAgent(config: AgentConfig, logger: Logger): Promise<RunningAgent> {
  const ca = await DevCa.loadOrCreate(config.stateDir, config.trustDomain);
  const server = await WorkloadApiServer.start({
    ca,
    identities: config.identities,
    socketDir: config.socketDir,
    svidTtlMs: config.svidTtlMs,
    logger,
  });
  return { config, ca, server, close: () => server.close() };
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'fetch-x509') {
    await fetchX509Main(argv.slice(1));
    return;
  }
  let config: AgentConfig;
  try {
    config = parseAgentArgs(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help / --version print and succeed; usage errors were already printed by commander.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const msg = err instanceof SpikeError ? err.message : 'invalid configuration';
    process.stderr.write(`spike-agent: ${msg}\n`);
    process.exitCode = 2;
    return;
  }
  const logger = createLogger({ component: 'spike-agent' });
  let agent: RunningAgent;
  try {
    agent = await startAgent(config, logger);
  } catch (err) {
    const msg = err instanceof SpikeError ? err.message : 'failed to start';
    logger.error({ err }, 'spike-agent failed to start');
    process.stderr.write(`spike-agent: ${msg}\n`);
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1); // second signal: give up waiting
    stopping = true;
    logger.info({ signal }, 'spike-agent stopping');
    void agent.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  logger.info({ trustDomain: config.trustDomain.name, identities: config.identities.length, sockets: config.socketDir }, 'spike-agent started');
  process.stderr.write(`${READY_LINE}\n`);
}
