/**
 * Whether the previous Nexus run on this data folder ended by itself (SQLite backend). A marker,
 * `nexus.running` (this process's pid, nothing else), is written once Nexus listens (with several
 * worker processes: by the primary, as it starts them) and removed
 * when the process exits by itself: a clean shutdown, or a fatal error, which logs its own line.
 * A marker found at start means the previous run was killed (SIGKILL, the OOM killer, a crash of
 * Node itself, a power loss): one ERROR line says so. Requests it had in flight got no answer;
 * acknowledged writes are durable either way.
 * Without a data folder (the memory, lite and PostgreSQL backends) there is no marker.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../lib/index.js';

const RUN_MARKER = 'nexus.running';

/** Reports an unclean end of the previous run and marks this one (see the module header). */
export function markRunning(dataDir: string, logger: Logger): void {
  if (dataDir === '' || !fs.existsSync(dataDir)) return;
  const file = path.join(dataDir, RUN_MARKER);
  let previous: string | undefined;
  try {
    previous = fs.readFileSync(file, 'utf8');
  } catch {
    // none: the previous run exited by itself, or this is the first
  }
  if (previous !== undefined) {
    const pid = Number.parseInt(previous, 10);
    logger.error({ event: 'unclean_exit', ...(Number.isSafeInteger(pid) ? { previousPid: pid } : {}) },
      'the previous Nexus run did not shut down (killed or crashed): requests it had in flight got no answer');
  }
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  } catch (e) {
    logger.warn({ reason: (e as NodeJS.ErrnoException).code ?? 'unknown' }, 'cannot write the run marker; an unclean exit will not be reported at the next start');
    return;
  }
  process.once('exit', () => {
    try {
      fs.rmSync(file, { force: true });
    } catch {
      // the folder went away: nothing to report at the next start either way
    }
  });
}
