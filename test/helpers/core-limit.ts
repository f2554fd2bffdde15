/**
 * Core-dump limits of the binaries tests start (ENV-08, src/lib/hardening.ts: a hardened
 * process whose RLIMIT_CORE is not 0 soft and hard runs a prlimit child to lower it).
 *
 * Start-up time: the suite starts hundreds of hardened processes, and that synchronous child
 * costs each one some 10–50 ms. So test/helpers/stack.ts starts them through
 * `prlimit --core=0:0` (which sets the limit and then execs the command in place: same pid,
 * about 1 ms): they find 0/0 and skip it. The test runner keeps its own limit: lowering the
 * hard limit cannot be undone without CAP_SYS_RESOURCE (which root in a container often lacks),
 * and the tests of the prlimit path need children that start above 0 ({@link raiseCoreWrapper},
 * and stacks started with `coreLimit: 'inherit'`).
 */
import fs from 'node:fs';
import { isShardCommand, parseProcLimitsCore } from '../../src/lib/hardening.js';
import type { BinName } from './bin.js';

export const PRLIMIT = '/usr/bin/prlimit';
const HAVE_PRLIMIT = fs.existsSync(PRLIMIT);

/**
 * The command prefix that starts `bin` with its core limit already 0/0, or `[]` for a command
 * that does not harden itself (a `spike` call other than the shard commands, a test double) or
 * where there is no prlimit (the process then lowers its limit itself, as in production).
 */
export function coreZeroPrefix(bin: BinName | { script: string }, args: readonly string[]): string[] {
  if (!HAVE_PRLIMIT || typeof bin !== 'string' || (bin === 'spike' && !isShardCommand(args))) return [];
  return [PRLIMIT, '--core=0:0'];
}

/**
 * The highest core limit a test child can start with (this process's hard limit): `unlimited`
 * or a number of bytes, as prlimit takes it. `0` only where the runner itself was started at 0/0.
 */
export function raisedCoreLimit(): string {
  const own = parseProcLimitsCore(fs.readFileSync('/proc/self/limits', 'utf8'));
  if (own === undefined) throw new Error('no "Max core file size" line in /proc/self/limits');
  return own.hard === null ? 'unlimited' : String(own.hard);
}

/** A command prefix that starts its command with soft and hard core limit {@link raisedCoreLimit}: a passing test shows a lowering. */
export function raiseCoreWrapper(): string[] {
  const limit = raisedCoreLimit();
  return [PRLIMIT, `--core=${limit}:${limit}`];
}
