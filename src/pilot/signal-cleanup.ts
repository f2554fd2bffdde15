/**
 * Removing a half-written file when the CLI is interrupted: a partial plaintext written next to
 * its destination must not stay behind after Ctrl-C (cipher decrypt -o).
 */
import fs from 'node:fs';

/**
 * Until the returned function is called, an interrupt (Ctrl-C), a termination or a hang-up
 * first removes `file` (a partial plaintext) and then ends the process by that same signal.
 */
export function removeOnSignal(file: string): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (sig: NodeJS.Signals): void => {
    fs.rmSync(file, { force: true });
    disarm();
    process.kill(process.pid, sig);
  };
  const disarm = (): void => {
    for (const sig of signals) process.off(sig, onSignal);
  };
  for (const sig of signals) process.on(sig, onSignal);
  return disarm;
}
