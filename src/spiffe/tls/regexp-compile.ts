/**
 * V8's regexp optimizer, switched off around one call (start-up time of the CLI and of the
 * servers' first dials, issue 15; resolve.ts). `dns.lookup` checks a host name with `net.isIP`
 * first; for a name, that runs Node's large IPv6 pattern, which V8 compiles on its first use
 * (and again to native code on a later one). With the optimizer on, those compiles cost
 * 10–50 ms of a process's start (more on a busy machine); with it off, about 2 ms. The flag
 * chooses how a pattern is compiled, never what it matches.
 *
 * The flag is turned back on as soon as the call returns, so the process's V8 flags, and with
 * them the flag hash that keys V8 code caches (bin/spike.js), are the same after as before.
 * A process started with any regexp option (node options or NODE_OPTIONS) is left alone: a
 * flag somebody chose is never overridden. So is one started with `--freeze-flags-after-init`
 * (V8 would abort it on the change).
 */
import { createRequire } from 'node:module';

// node:v8 is loaded on the first call only: most processes importing this module never call it.
const requireBuiltin = createRequire(import.meta.url);

/** Whether this process's node options name a regexp flag (then nothing is changed). */
export function regexpFlagsChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  // Frozen flags: V8 aborts the process on any later change, which no catch can stop.
  return [...execArgv, nodeOptions ?? ''].some((a) => /regexp|freeze-flags-after-init/i.test(a));
}

/** Runs `fn` with V8's regexp optimizer off, then turns it back on (see the module comment). */
export function withoutRegexpOptimization<T>(fn: () => T, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS']): T {
  if (regexpFlagsChosen(execArgv, nodeOptions)) return fn();
  let v8: typeof import('node:v8');
  try {
    v8 = requireBuiltin('node:v8') as typeof import('node:v8');
    v8.setFlagsFromString('--no-regexp-optimization');
  } catch {
    return fn(); // an optimization only
  }
  try {
    return fn();
  } finally {
    v8.setFlagsFromString('--regexp-optimization');
  }
}
