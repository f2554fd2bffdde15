/**
 * Process helpers shared by the server binaries: one readable line on stderr and a
 * non-zero exit for start-up failures (CFG-01), and a clean shutdown on
 * SIGTERM/SIGINT.
 */
import type { Logger } from './log.js';

/** Prints `<name>: <reason>` (the error's fixed message, never input values) and sets exit code 1. */
export function fail(name: string, err: unknown): void {
  const msg = err instanceof Error ? err.message : 'unexpected error';
  process.stderr.write(`${name}: ${msg}\n`);
  process.exitCode = 1;
  // Anything still holding the event loop (sockets, timers) must not keep a failed process alive.
  setTimeout(() => process.exit(1), 200).unref();
}

/** Runs `stop` once on SIGTERM/SIGINT, then exits 0 (or 1 if stopping failed). */
export function installShutdown(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal: sig }, 'shutting down');
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
