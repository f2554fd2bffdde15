/**
 * `spike` — SPIKE Pilot, the operator CLI. Commands: `secret`, `policy`, `cipher`,
 * `operator`, and `env` (which Workload API and Nexus URL are used, and why); global `--socket <name|path>` picks the Workload API socket (a bare name is a
 * dev-stack socket such as `restore`).
 *
 * Contract (D15): data goes to stdout only; an error is ONE line on stderr; exit codes are
 * 0 success, 1 failure, 2 usage error. No stack trace is ever printed. Nothing connects to
 * the Workload API or Nexus before a command that needs it runs, so `--help` and usage
 * errors are instant (gaps B15).
 *
 * Start-up time (issue 15): only the module of the command group being run is loaded
 * (`secret get` never loads the operator's Shamir code, the audit verifier or `yaml`); the
 * whole tree is built only for top-level help, an unknown group, or no group at all.
 */
import { Command, CommanderError } from 'commander';
import { fstatSync } from 'node:fs';
import { PilotContext, type GlobalOptions, type PilotIo } from './context.js';
import { commanderExitCode, describeError, EXIT_OK, EXIT_USAGE } from './errors.js';
import { registerCompletion } from './completion.js';
import { escapeForTerminal } from './terminal-text.js';
import { packageVersion } from '../lib/index.js';
import type { NexusClient } from '../sdk/index.js';

type Register = (program: Command, ctx: PilotContext) => void;

/** Each command group's module, loaded on demand (in help order). */
const GROUPS: ReadonlyArray<[string, () => Promise<Register>]> = [
  ['secret', async () => (await import('./secret.js')).registerSecret],
  ['policy', async () => (await import('./policy.js')).registerPolicy],
  ['cipher', async () => (await import('./cipher.js')).registerCipher],
  ['operator', async () => (await import('./operator.js')).registerOperator],
  ['env', async () => (await import('./envcmd.js')).registerEnv],
  ['audit', async () => (await import('./audit.js')).registerAudit],
];

/** Program options that take a value (so the value is not mistaken for the group). */
const VALUE_OPTIONS = new Set(['--socket']);

/**
 * The command group `argv` runs, if it names a known one; undefined means "load them all"
 * (help, version, no command, an unknown or misspelt group: commander then lists or suggests).
 */
export function groupOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return GROUPS.some(([g]) => g === a) ? a : undefined;
  }
  return undefined;
}

/** The first names `spike help` can be about: the command groups and `completion`. */
const KNOWN_TOP: ReadonlySet<string> = new Set([...GROUPS.map(([g]) => g), 'completion']);

/**
 * `spike help <group> <command>…` as `spike <group> <command>… --help`: commander's own help
 * command takes one name only (it showed the group's help for `help secret put`), and
 * `help help` was a usage error. Only the bare names right after `help` are taken (up to the
 * first option or `--`; another `help` among them is dropped), and the result always ends in
 * `--help` unless the first name is unknown, so no line starting with `help` can run a
 * command. `help` alone is `--help` (the whole tree's help); an unknown first name gets
 * commander's "unknown command" error. A line not starting with `help` is returned as it was.
 */
export function helpArgv(argv: readonly string[]): string[] {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    if (a !== 'help') break;
    const names: string[] = [];
    for (const n of argv.slice(i + 1)) {
      if (n.startsWith('-')) break;
      if (n !== 'help') names.push(n);
    }
    const before = argv.slice(0, i);
    if (names.length === 0) return [...before, '--help'];
    // An unknown name alone gets commander's "unknown command" error (with --help it would print the root help).
    return KNOWN_TOP.has(names[0]!) ? [...before, ...names, '--help'] : [...before, names[0]!];
  }
  return [...argv];
}

const SOCKET_HELP = 'Workload API socket: a dev-stack name (pilot, recover, restore, demo) or a path';

const version = packageVersion;

/** Builds the command tree over a context: one group's, or all of them when `only` is undefined. */
async function buildProgram(ctx: PilotContext, only: string | undefined): Promise<Command> {
  const registers = await Promise.all(GROUPS.filter(([g]) => only === undefined || g === only).map(([, load]) => load()));
  const program = new Command('spike');
  program
    .description(`SPIKE - Secure your secrets with SPIFFE (SPIKE for TypeScript ${version()})`)
    .version(version(), '-V, --version', 'print the version')
    .option('--socket <name|path>', SOCKET_HELP)
    // Program options only before the subcommand, so `secret get -v/--version <n>` is the
    // subcommand's; `--socket` is also added to every command below (either place works).
    .enablePositionalOptions()
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      // Commander's "error: …" becomes our one line "Error: …"; it quotes the user's argv, whose
      // control characters would be commands to the terminal: shown escaped.
      outputError: (s, write) => write(`${escapeForTerminal(s.trim().replace(/^error:\s*/i, 'Error: ').replace(/\s*\n\s*/g, ' ')).text}\n`),
    })
    .addHelpText('after', '\nExit codes: 0 success, 1 failure, 2 usage error. Errors are one line on stderr; data goes to stdout.');
  for (const register of registers) register(program, ctx);
  registerCompletion(program, ctx); // walks the whole tree: groupOf() loads every group for it
  // exitOverride / output settings must reach every subcommand.
  const apply = (c: Command): void => {
    for (const sub of c.commands) {
      sub.exitOverride().showSuggestionAfterError(true).configureOutput(program.configureOutput());
      if (sub.commands.length === 0) sub.option('--socket <name|path>', SOCKET_HELP);
      apply(sub);
    }
  };
  apply(program);
  return program;
}

interface RunOptions {
  /** Test seam: replaces `NexusClient.connect`. */
  connect?: typeof NexusClient.connect;
}

/** Runs one CLI invocation; resolves with the exit code (never throws, never exits). */
export async function run(given: string[], io: PilotIo, opts: RunOptions = {}): Promise<number> {
  const argv = helpArgv(given);
  let program: Command | undefined;
  const ctx = new PilotContext(io, () => (program?.opts<GlobalOptions>() ?? {}), opts.connect);
  program = await buildProgram(ctx, groupOf(argv));
  let code = EXIT_OK;
  // Commander's help exits with `process.exitCode` when one is set, which in a host process
  // (a test runner after a failure, an app embedding `run`) turned `help` into a usage error.
  const hostExitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version print and exit 0; anything else commander reports is a usage error.
      code = commanderExitCode(e);
    } else {
      const d = describeError(e, ctx.where.group, ctx.where.command);
      if (d.line) io.stderr.write(`${d.line}\n`);
      code = d.exitCode;
    }
  } finally {
    if (process.exitCode === undefined) process.exitCode = hostExitCode;
    try {
      await ctx.close();
    } catch {
      /* closing must not change the outcome */
    }
  }
  return code;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) resolve();
    else stream.write('', () => resolve());
  });
}

/**
 * The `spike` binary's entry point. Exits as soon as stdout and stderr are flushed: nothing
 * left in the event loop (idle keep-alive sockets, timers of loaded libraries, V8 tiering up
 * code) may delay the exit of a finished command.
 */
export async function main(argv: string[]): Promise<void> {
  // A failed write of the data (`> file` on a full disk, an I/O error) must not end in exit 0
  // with a missing or cut output: it is reported once the command is done (exit 1).
  let stdoutFailure: string | undefined;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); // reader went away (e.g. `| head`)
    stdoutFailure ??= typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code) ? e.code : 'EIO';
  });
  const code = await run(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    // Only a command that reads stdin creates the stream (a few ms of start-up otherwise).
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    cwd: process.cwd(),
    stdinIsDirectory: () => {
      try {
        return fstatSync(0).isDirectory();
      } catch {
        return false;
      }
    },
  });
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  if (stdoutFailure !== undefined && code === EXIT_OK) {
    process.stderr.write(`Error: Cannot write the output to stdout (${stdoutFailure}).\n`);
    await flushed(process.stderr);
    process.exit(1);
  }
  process.exit(code);
}
