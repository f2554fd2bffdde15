/**
 * Folders of development state that must have been created by us, never planted.
 *
 * A repository checkout can ship any file (`.spike/agent/ca.key`, `.spike/recovery/*`), with
 * any mode a restrictive umask gives it, owned by the user who cloned it. What it cannot ship
 * is knowledge of the folder's inode number on the victim's machine. So a state folder is
 * created by us with mode 0700 and a marker file (0600) recording its inode; a folder is
 * trusted later only when it is a real directory owned by the caller with no group/other
 * permissions, holding a marker (regular file, owned by the caller, 0600) for this very inode.
 * A folder moved on the same file system keeps its inode; a copied one does not (refused).
 *
 * An existing EMPTY folder owned by the caller and not writable by group or others is adopted:
 * git never creates empty folders, and there is nothing in it to distrust.
 */
import fs from 'node:fs';
import path from 'node:path';

const MARKER_MAX = 4096;
const MARKER_RE = /^spike-state v1 ino=([0-9]{1,40})\n?$/;

function callerUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function lstatBig(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Writes the marker of `dir` (new, ours). */
function writeMarker(dir: string, marker: string): void {
  const st = fs.lstatSync(dir, { bigint: true });
  const fd = fs.openSync(path.join(dir, marker), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, `spike-state v1 ino=${st.ino.toString()}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Why the marker of `dir` (inode `ino`) is not valid, or undefined when it is. */
function markerProblem(dir: string, marker: string, ino: bigint): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, marker), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return `has no ${marker} (it was made by an earlier version, or not by us)`;
    return code === 'ELOOP' ? `has a ${marker} that is a symbolic link` : `has a ${marker} that cannot be read`;
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = callerUid();
    if (!st.isFile()) return `has a ${marker} that is not a regular file`;
    if (uid !== undefined && st.uid !== uid) return `has a ${marker} owned by another user`;
    if ((st.mode & 0o077) !== 0) return `has a ${marker} readable or writable by others`;
    const buf = Buffer.alloc(MARKER_MAX);
    const n = fs.readSync(fd, buf, 0, MARKER_MAX, 0);
    const m = MARKER_RE.exec(buf.subarray(0, n).toString('latin1'));
    if (!m || BigInt(m[1]!) !== ino) return `has a ${marker} that does not belong to this folder (copied, or planted)`;
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates `dir` (0700, with `marker`), adopts an empty one, or checks that an existing one is
 * ours. Returns undefined when the folder may be used, else the reason it may not ("is a
 * symbolic link", "has no … (…)") — nothing is changed then.
 */
export function prepareOwnedDir(dir: string, marker: string): string | undefined {
  let st = lstatBig(dir);
  if (!st) {
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 }); // new parents private too
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.chmodSync(dir, 0o700); // the umask may have narrowed it; never wider
      writeMarker(dir, marker);
      return undefined;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      st = lstatBig(dir); // created meanwhile: check it like any existing folder
      if (!st) throw e;
    }
  }
  const uid = callerUid();
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (uid !== undefined && Number(st.uid) !== uid) return 'is owned by another user';
  if (fs.readdirSync(dir).length === 0) {
    if ((Number(st.mode) & 0o022) !== 0) return 'is writable by group or others';
    fs.chmodSync(dir, 0o700);
    writeMarker(dir, marker);
    return undefined;
  }
  if ((Number(st.mode) & 0o077) !== 0) return 'is not private to you (mode must be 0700)';
  return markerProblem(dir, marker, st.ino);
}

/**
 * Check only (creates nothing): undefined when `dir` exists and is ours (a real directory
 * owned by the caller, mode 0700, holding `marker` for its inode); else why not.
 */
export function ownedDirProblem(dir: string, marker: string): string | undefined {
  const st = lstatBig(dir);
  if (!st) return 'does not exist';
  const uid = callerUid();
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (uid !== undefined && Number(st.uid) !== uid) return 'is owned by another user';
  if ((Number(st.mode) & 0o077) !== 0) return 'is not private to you (mode must be 0700)';
  return markerProblem(dir, marker, st.ino);
}
