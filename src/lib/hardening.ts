/**
 * Process hardening at start-up (ENV-08): no core dumps from a process that holds
 * the root key, purpose keys or a Shamir share (Nexus, Keeper, Bootstrap, Pilot's shard
 * commands; spike-agent best-effort).
 *
 * Node has no setrlimit(2) and no prctl(2). So:
 *  1. If RLIMIT_CORE is already 0 soft and hard (systemd `LimitCORE=0`, `ulimit -c 0` in the
 *     launcher, `docker run --ulimit core=0`), nothing else runs: one read of
 *     /proc/self/limits.
 *  2. Otherwise run util-linux `prlimit --pid <own pid> --core=0:0` (prlimit(2) on this
 *     process; lowering a limit needs no privilege) synchronously, then read the limit
 *     back: only the re-read counts, never the tool's exit status.
 *  3. If it still is not 0/0 (no prlimit, no /proc, a seccomp filter…): `required` mode
 *     refuses to start unless SPIKE_ALLOW_CORE_DUMPS=true, which downgrades it to a warning;
 *     `best-effort` mode warns and goes on.
 * Re-executing through `sh -c 'ulimit -c 0; exec …'` was not chosen: Node cannot exec in
 * place, so it would leave a second, supervising Node process and a different pid.
 * Node cannot mlock(2) either: keep swap off or encrypted on hosts running these processes
 * (docs/configuration.md).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { bool } from './env.js';
import type { Logger } from './log.js';
import { SpikeError } from './errors.js';

const CORE_DUMP_OPT_OUT_ENV = 'SPIKE_ALLOW_CORE_DUMPS';

/** RLIMIT_CORE in bytes; null = unlimited. */
export interface CoreLimit {
  soft: bigint | null;
  hard: bigint | null;
}

export class HardeningError extends SpikeError {
  constructor() {
    super('core_dumps_not_disabled',
      'could not set the core-dump limit to 0 (install util-linux prlimit, or set LimitCORE=0 / ulimit -c 0 in the launcher; '
      + `${CORE_DUMP_OPT_OUT_ENV}=true starts anyway, with core dumps possible)`);
  }
}

function parseLimitValue(s: string): bigint | null | undefined {
  if (s === 'unlimited') return null;
  return /^[0-9]{1,20}$/.test(s) ? BigInt(s) : undefined;
}

/** The "Max core file size" line of /proc/<pid>/limits, or undefined if absent or odd. */
export function parseProcLimitsCore(text: string): CoreLimit | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Max core file size'));
  if (!line) return undefined;
  const [soft, hard] = line.slice('Max core file size'.length).trim().split(/\s+/);
  const s = parseLimitValue(soft ?? '');
  const h = parseLimitValue(hard ?? '');
  return s === undefined || h === undefined ? undefined : { soft: s, hard: h };
}

/** Parses `ulimit -S -c; ulimit -H -c` output (blocks or "unlimited", one per line). */
export function parseUlimitOutput(text: string): CoreLimit | undefined {
  const [soft, hard] = text.trim().split(/\s+/);
  const s = parseLimitValue(soft ?? '');
  const h = parseLimitValue(hard ?? '');
  return s === undefined || h === undefined ? undefined : { soft: s, hard: h };
}

const isZero = (l: CoreLimit | undefined): boolean => l !== undefined && l.soft === 0n && l.hard === 0n;

export interface HardeningDeps {
  /** This process's core limit, or undefined when it cannot be read. */
  readLimit(): CoreLimit | undefined;
  /** Runs prlimit on this process; true if some prlimit binary ran (its result is re-read). */
  runPrlimit(pid: number): boolean;
}

// node:child_process is loaded only when a child is needed: a process started at 0/0 (the usual
// launcher setting, and every server the test suite starts) never loads it (start-up time).
const requireBuiltin = createRequire(import.meta.url);
const childProcess = (): typeof import('node:child_process') => requireBuiltin('node:child_process') as typeof import('node:child_process');

const PRLIMIT_PATHS = ['/usr/bin/prlimit', '/bin/prlimit', '/usr/sbin/prlimit', '/sbin/prlimit'];
const SPAWN_OPTS = { stdio: 'ignore' as const, timeout: 10_000, env: { LC_ALL: 'C', PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } };

export const systemDeps: HardeningDeps = {
  readLimit() {
    try {
      return parseProcLimitsCore(fs.readFileSync('/proc/self/limits', 'utf8'));
    } catch {
      // No /proc (not Linux): a child shell inherits our limits and can print them.
      const r = childProcess().spawnSync('/bin/sh', ['-c', 'ulimit -S -c; ulimit -H -c'], { ...SPAWN_OPTS, stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' });
      return r.status === 0 ? parseUlimitOutput(r.stdout) : undefined;
    }
  },
  runPrlimit(pid) {
    // Well-known absolute paths only, never a PATH search: an empty or relative PATH entry
    // would run a `prlimit` shipped in the current folder (a hostile checkout).
    const bin = PRLIMIT_PATHS.find((p) => fs.existsSync(p));
    if (bin === undefined) return false;
    const r = childProcess().spawnSync(bin, ['--pid', String(pid), '--core=0:0'], SPAWN_OPTS);
    return r.error === undefined;
  },
};

type CoreDumpResult = { ok: true; via: 'already' | 'prlimit' } | { ok: false };

/** Brings RLIMIT_CORE to 0 soft and hard if it is not already; never throws. */
export function disableCoreDumps(deps: HardeningDeps = systemDeps, pid: number = process.pid): CoreDumpResult {
  try {
    if (isZero(deps.readLimit())) return { ok: true, via: 'already' };
    if (deps.runPrlimit(pid) && isZero(deps.readLimit())) return { ok: true, via: 'prlimit' };
  } catch {
    // fall through: not disabled
  }
  return { ok: false };
}

type HardeningMode = 'required' | 'best-effort';

type HardenOutcome =
  | { proceed: true; disabled: true; via: 'already' | 'prlimit' }
  | { proceed: true; disabled: false; optedOut: boolean }
  | { proceed: false; error: Error };

/** Applies {@link disableCoreDumps} under `mode` and the opt-out variable; never throws. */
export function hardenProcess(mode: HardeningMode, env: NodeJS.ProcessEnv, deps: HardeningDeps = systemDeps): HardenOutcome {
  let optedOut: boolean;
  try {
    optedOut = bool(env, CORE_DUMP_OPT_OUT_ENV, false);
  } catch (e) {
    return { proceed: false, error: e as Error };
  }
  const r = disableCoreDumps(deps);
  if (r.ok) return { proceed: true, disabled: true, via: r.via };
  if (mode === 'required' && !optedOut) return { proceed: false, error: new HardeningError() };
  return { proceed: true, disabled: false, optedOut };
}

/**
 * For the server binaries: hardens, logs the outcome (JSON), and returns false after
 * reporting a start-up failure on stderr (the caller returns at once).
 */
export function hardenServer(name: string, logger: Logger, onFail: (name: string, err: unknown) => void, env: NodeJS.ProcessEnv = process.env): boolean {
  const o = hardenProcess('required', env);
  if (!o.proceed) {
    onFail(name, o.error);
    return false;
  }
  if (o.disabled) logger.info({ via: o.via }, 'core dumps disabled');
  else logger.warn({ reason: 'core_dumps_not_disabled', optOut: CORE_DUMP_OPT_OUT_ENV }, 'core dumps are NOT disabled: key material may reach a core file');
  return true;
}

/**
 * For CLIs (bin/*.js): hardens; on refusal prints one line and sets exit code 1, returning
 * false; in best-effort mode prints one warning line and returns true.
 */
export function hardenCli(name: string, mode: HardeningMode, env: NodeJS.ProcessEnv = process.env): boolean {
  const o = hardenProcess(mode, env);
  if (!o.proceed) {
    process.stderr.write(`${name}: ${o.error.message}\n`);
    process.exitCode = 1;
    return false;
  }
  if (!o.disabled) process.stderr.write(`${name}: warning: could not set the core-dump limit to 0; key material may reach a core file\n`);
  return true;
}

/**
 * True when a `spike` command line handles Shamir shards (operator recover, restore,
 * verify-shard; audit verify with `--shard`, which rebuilds the root key): only those pay for
 * hardening, so everyday CLI use stays fast.
 */
export function isShardCommand(argv: readonly string[]): boolean {
  // Conservative on purpose: any command line naming `operator` and a shard subcommand, or
  // `audit` and a `--shard` option, is hardened wherever the words stand (after `--`, after
  // options with values…). A false positive costs one prlimit call; a false negative would
  // leave a shard command dumpable.
  if (argv.includes('audit') && argv.some((a) => a === '--shard' || a.startsWith('--shard='))) return true;
  return argv.includes('operator') && argv.some((a) => a === 'recover' || a === 'restore' || a === 'verify-shard');
}
