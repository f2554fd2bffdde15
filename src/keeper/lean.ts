/**
 * The Keeper's V8 settings, applied by `bin/spike-keeper.js` before any of the Keeper's code
 * is loaded (issue 17: an idle Keeper ≤ 60 MiB). A Keeper is a tiny server that answers a few
 * requests a minute; V8's defaults are tuned for throughput. Two flags trade speed it does not
 * need for memory:
 *
 * - `--no-opt`: no optimising compiler. Its compiled code, feedback and the compiler's own code
 *   pages of the node binary are never touched (the largest single saving, ~10 MiB). Share
 *   checks still run in milliseconds.
 * - `--optimize-for-size`: smaller heap growth steps and young generation.
 *
 * Both only change how JavaScript is compiled and how the heap grows, never what the Keeper
 * does. They are set at run time (`v8.setFlagsFromString`) because `NODE_OPTIONS` does not
 * accept them; setting them before the first import keeps every later compile under them.
 */
import v8 from 'node:v8';

export const KEEPER_V8_FLAGS: readonly string[] = ['--no-opt', '--optimize-for-size'];

/** Applies {@link KEEPER_V8_FLAGS} to this process (idempotent). */
export function applyKeeperV8Flags(): void {
  for (const flag of KEEPER_V8_FLAGS) v8.setFlagsFromString(flag);
}
