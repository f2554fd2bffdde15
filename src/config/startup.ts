/**
 * The common start of every SPIKE server process (Nexus, Keeper, Bootstrap), in the order
 * that matters: `--help` and `--version` (exit 0), an unknown argument refused (exit 2; the
 * servers are configured by environment); core dumps off before any key material exists (ENV-08); the
 * component's configuration and the trust roots, refused with one readable line when
 * invalid; the process's own SVID from the Workload API, which must carry the component's
 * role ID. Any failure prints `<name>: <reason>` and sets a non-zero exit code.
 */
import { WorkloadX509Source, assertDefaultTrusted, type SpiffeId } from '../spiffe/index.js';
import { createLogger, fail, hardenServer, packageVersion, type Logger } from '../lib/index.js';
import { loadTrustRoots, recognisers, type Recognisers } from '../protocol/index.js';
import type { CommonConfig } from './components.js';

export interface StartupSpec<C extends CommonConfig> {
  /** Process name in error lines, e.g. `spike-nexus`. */
  name: string;
  /** Logger component, e.g. `nexus`. */
  component: string;
  usage: string;
  /** Arguments the component takes besides --help/-h and --version/-V (e.g. Bootstrap's `-init`). */
  flags?: readonly string[];
  loadConfig: (env: NodeJS.ProcessEnv) => C;
  /** True when the process's own SVID carries this component's role. */
  isSelf: (ids: Recognisers, id: SpiffeId) => boolean;
  /** The error line when it does not, naming the setting to check. */
  notSelf: string;
  /** Runs after the configuration is valid, before the Workload API is asked; false stops. */
  beforeSource?: (cfg: C, logger: Logger) => boolean;
}

export interface Started<C> {
  logger: Logger;
  cfg: C;
  ids: Recognisers;
  source: WorkloadX509Source;
}

/**
 * How a refused argument is named on stderr (which goes to the journal): a flag's name only
 * (`--db-password` of `--db-password=…`), else its position, so a value typed by mistake on
 * the command line is never copied into a log.
 */
export function shownArgument(arg: string, index: number): string {
  const flag = /^--?[A-Za-z][A-Za-z0-9-]{0,31}(?==|$)/.exec(arg);
  return flag ? `"${flag[0]}"` : `#${index + 1} (not shown)`;
}

/** Undefined when the process must stop (help printed, or a failure already reported). */
export async function startComponent<C extends CommonConfig>(argv: string[], spec: StartupSpec<C>): Promise<Started<C> | undefined> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(spec.usage);
    return undefined;
  }
  if (argv.includes('--version') || argv.includes('-V')) {
    process.stdout.write(`${packageVersion()}\n`);
    return undefined;
  }
  const unknown = argv.findIndex((a) => !(spec.flags ?? []).includes(a));
  if (unknown >= 0) {
    process.stderr.write(`${spec.name}: unknown argument ${shownArgument(argv[unknown]!, unknown)} (settings come from the environment; see --help)\n`);
    process.exitCode = 2;
    return undefined;
  }
  const logger = createLogger({ component: spec.component });
  if (!hardenServer(spec.name, logger, fail)) return undefined;
  let cfg: C;
  let ids: Recognisers;
  try {
    cfg = spec.loadConfig(process.env);
    ids = recognisers(loadTrustRoots(process.env));
  } catch (e) {
    fail(spec.name, e);
    return undefined;
  }
  if (spec.beforeSource && !spec.beforeSource(cfg, logger)) return undefined;
  let source: WorkloadX509Source;
  try {
    // The unconfigured default is judged before every dial (a socket may appear later).
    const beforeDial = cfg.endpointIsDefault ? () => assertDefaultTrusted() : undefined;
    source = await WorkloadX509Source.open({ endpoint: cfg.endpointSocket, timeoutMs: cfg.sourceTimeoutMs, logger, ...(beforeDial ? { beforeDial } : {}) });
  } catch (e) {
    fail(spec.name, e);
    return undefined;
  }
  if (!spec.isSelf(ids, source.getX509Svid().id)) {
    source.close();
    fail(spec.name, new Error(spec.notSelf));
    return undefined;
  }
  return { logger, cfg, ids, source };
}
