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

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
/** A pid and a newline: anything longer in the marker is not read. */
const MARKER_MAX_BYTES = 32;

/**
 * What is at the marker's place: nothing, or what a previous run left. Never follows a symlink
 * or blocks on a FIFO put there; anything but a small regular file counts as a marker without
 * a pid.
 */
function readMarker(file: string): { pid?: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : {};
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return {};
    const buf = Buffer.alloc(MARKER_MAX_BYTES);
    const text = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('latin1');
    const pid = /^\d{1,10}\n?$/.test(text) ? Number.parseInt(text, 10) : undefined;
    return pid === undefined ? {} : { pid };
  } catch {
    return {};
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes this run's marker afresh: whatever was at its place is removed, the new file is created exclusively, 0600. */
function writeMarker(file: string): void {
  fs.rmSync(file, { force: true });
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, `${process.pid}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reports an unclean end of the previous run and marks this one (see the module header). */
export function markRunning(dataDir: string, logger: Logger): void {
  if (dataDir === '' || !fs.existsSync(dataDir)) return;
  const file = path.join(dataDir, RUN_MARKER);
  const previous = readMarker(file);
  if (previous !== undefined) {
    logger.error({ event: 'unclean_exit', ...(previous.pid !== undefined ? { previousPid: previous.pid } : {}) },
      'the previous Nexus run did not shut down (killed or crashed): requests it had in flight got no answer');
  }
  try {
    writeMarker(file);
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
