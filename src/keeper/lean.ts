/**
 * The Keeper's V8 settings, applied by `bin/spike-keeper.js` before any of the Keeper's code
 * is loaded (issue 17: an idle Keeper ≤ 60 MiB). A Keeper is a tiny server that answers a few
 * requests a minute; V8's defaults are tuned for throughput. Three flags trade speed it does
 * not need for memory:
 *
 * - `--no-opt`: no optimising compiler. Its compiled code, feedback and the compiler's own code
 *   pages of the node binary are never touched (the largest single saving, ~10 MiB). Share
 *   checks still run in milliseconds.
 * - `--optimize-for-size`: smaller heap growth steps and young generation.
 * - `--semi-space-growth-factor=1`: the young generation stays at its initial size (2 MiB)
 *   instead of growing to 8 MiB after the start-up's allocations, ~3-6 MiB of RSS that an idle
 *   Keeper kept until V8's memory reducer happened to shrink it. More frequent scavenges cost
 *   microseconds on a server that handles a few small requests.
 *
 * They only change how JavaScript is compiled and how the heap grows, never what the Keeper
 * does. They are set at run time (`v8.setFlagsFromString`) because `NODE_OPTIONS` does not
 * accept them; setting them before the first import keeps every later compile under them.
 */
import v8 from 'node:v8';

export const KEEPER_V8_FLAGS: readonly string[] = ['--no-opt', '--optimize-for-size', '--semi-space-growth-factor=1'];

/** Applies {@link KEEPER_V8_FLAGS} to this process (idempotent). */
export function applyKeeperV8Flags(): void {
  for (const flag of KEEPER_V8_FLAGS) v8.setFlagsFromString(flag);
}
