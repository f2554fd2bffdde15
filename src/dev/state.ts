/**
 * The `npm start` state folder (`./.spike`, or `$SPIKE_DEV_DIR`) and its marker.
 *
 * The folder holds the dev CA key, the Workload API sockets, the SQLite data and the dev
 * recovery shards. `npm start` must never reuse state it did not create: a repository that
 * ships `.spike/agent/ca.key` (a CA whose key the attacker knows) or `.spike/recovery/*`
 * would otherwise become the trust root or the root key of the dev stack.
 *
 * Rule: `npm start` creates the folder itself (mode 0700) and writes a marker file
 * `dev-stack.marker` (0600) into it that records the folder's inode number. On every later
 * start the folder must be a real directory (not a symlink) owned by the caller with no
 * group/other permissions, and hold a marker (a regular file owned by the caller, 0600)
 * naming this very folder's inode. A checkout cannot forge that: whatever it ships, the
 * folder git creates on this machine gets an inode number the repository could not know. A
 * moved folder keeps its inode on the same file system; a copied one is refused.
 *
 * An existing EMPTY folder owned by the caller and not writable by group or others is adopted
 * (git never creates an empty folder, and there is nothing in it to distrust). A folder of an
 * earlier version (no marker) is refused like any other: the one-line error says to delete it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpikeError } from '../errors.js';

export const MARKER_FILE = 'dev-stack.marker';
const MARKER_MAX = 4096;
const MARKER_RE = /^spike-dev-state v1 ino=([0-9]{1,40})\n?$/;

export class DevStateError extends SpikeError {
  constructor(readonly dir: string, readonly reason: string) {
    super('dev_state_untrusted', `${dir} ${reason}`);
  }
}

function callerUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function markerText(ino: bigint): string {
  return `spike-dev-state v1 ino=${ino.toString()}\n`;
}

function lstatBig(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Writes the marker of `dir` (which must be new and ours). */
function writeMarker(dir: string): void {
  const st = fs.lstatSync(dir, { bigint: true });
  const fd = fs.openSync(path.join(dir, MARKER_FILE), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, markerText(st.ino));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Why the marker of `dir` (inode `ino`) is not valid, or undefined when it is. */
function markerProblem(dir: string, ino: bigint): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, MARKER_FILE), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return 'has no npm start marker (it was made by an earlier version, or not by npm start)';
    return code === 'ELOOP' ? `has a ${MARKER_FILE} that is a symbolic link` : `has a ${MARKER_FILE} that cannot be read`;
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = callerUid();
    if (!st.isFile()) return `has a ${MARKER_FILE} that is not a regular file`;
    if (uid !== undefined && st.uid !== uid) return `has a ${MARKER_FILE} owned by another user`;
    if ((st.mode & 0o077) !== 0) return `has a ${MARKER_FILE} readable or writable by others`;
    const buf = Buffer.alloc(MARKER_MAX);
    const n = fs.readSync(fd, buf, 0, MARKER_MAX, 0);
    const m = MARKER_RE.exec(buf.subarray(0, n).toString('latin1'));
    if (!m || BigInt(m[1]!) !== ino) return 'has a marker that does not belong to this folder (copied, or planted)';
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates the dev state folder, or checks that an existing one is the one `npm start`
 * created. Throws {@link DevStateError} (nothing is changed then).
 */
export function prepareDevDir(dir: string): void {
  let st = lstatBig(dir);
  if (!st) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chmodSync(dir, 0o700); // the umask may have narrowed it; never wider
      writeMarker(dir);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      st = lstatBig(dir); // created meanwhile: check it like any existing folder
      if (!st) throw e;
    }
  }
  const uid = callerUid();
  if (st.isSymbolicLink()) throw new DevStateError(dir, 'is a symbolic link');
  if (!st.isDirectory()) throw new DevStateError(dir, 'is not a directory');
  if (uid !== undefined && Number(st.uid) !== uid) throw new DevStateError(dir, 'is owned by another user');
  if (fs.readdirSync(dir).length === 0) {
    if ((Number(st.mode) & 0o022) !== 0) throw new DevStateError(dir, 'is writable by group or others');
    fs.chmodSync(dir, 0o700);
    writeMarker(dir);
    return;
  }
  if ((Number(st.mode) & 0o077) !== 0) throw new DevStateError(dir, 'is not private to you (mode must be 0700)');
  const problem = markerProblem(dir, st.ino);
  if (problem !== undefined) throw new DevStateError(dir, problem);
}

function shellQuote(p: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

/** The one-line error `npm start` prints for a refused state folder. */
export function devStateErrorLine(e: DevStateError): string {
  return (
    `[dev] Error: refusing the state folder ${e.dir}: it ${e.reason}; npm start only reuses a folder it created itself. ` +
    `If it only holds dev stack state, delete it (rm -rf ${shellQuote(e.dir)}) and run npm start again, or set SPIKE_DEV_DIR to another folder.`
  );
}
