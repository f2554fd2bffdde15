/**
 * Whether a path may be trusted as set up by root or by the caller: every folder above it (as
 * written and as resolved through symlinks) belongs to root or to the caller and is writable by
 * nobody else unless sticky (like /tmp), and so does the entry itself when asked. Otherwise
 * another user could rename a folder away and put one of their own in its place (a socket
 * that answers with their trust bundle, a symlink to where they want files written).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ForeignPath {
  /** The folder (or the entry) that fails. */
  path: string;
  /** `owner`: it belongs to another user; `writable`: group or others may write it (not sticky). */
  why: 'owner' | 'writable' | 'unresolvable';
}

/** A folder, or a symlink on the way (another user could re-point theirs after the check). */
function judge(p: string, st: fs.Stats, uid: number, sharedOnly: boolean): ForeignPath | undefined {
  if (st.uid !== 0 && st.uid !== uid && (!sharedOnly || inSharedFolder(p))) return { path: p, why: 'owner' };
  if (st.isDirectory() && (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return { path: p, why: 'writable' };
  return undefined;
}

/** Whether `p`'s parent is a folder others may create entries in (sticky and group- or world-writable, like /tmp). */
function inSharedFolder(p: string): boolean {
  try {
    const st = fs.lstatSync(path.dirname(p));
    return st.isDirectory() && (st.mode & 0o1000) !== 0 && (st.mode & 0o022) !== 0;
  } catch {
    return true;
  }
}

/**
 * The first folder above `abs` (and `abs` itself with `self`) that fails the rule above, or
 * undefined when none does. Folders that do not exist yet are not judged (nor is `abs` then).
 * `sharedOnly`: another user's folder counts only where others could have made it (right
 * under a sticky folder that group or others may write, such as /tmp), e.g. for development sockets in a
 * checkout that the CI user owns while the job runs as root; group/other-writable folders
 * still count everywhere.
 */
export function foreignAncestor(abs: string, uid: number, opts: { self?: boolean; sharedOnly?: boolean } = {}): ForeignPath | undefined {
  const sharedOnly = opts.sharedOnly === true;
  let real: string;
  try {
    real = fs.realpathSync(path.dirname(abs));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { path: path.dirname(abs), why: 'unresolvable' };
  }
  if (opts.self === true) {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(abs);
    } catch {
      st = undefined;
    }
    const bad = st === undefined ? undefined : judge(abs, st, uid, sharedOnly);
    if (bad) return bad;
  }
  for (const start of new Set([path.dirname(abs), real])) {
    for (let d = start; ; d = path.dirname(d)) {
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(d);
      } catch {
        st = undefined;
      }
      const bad = st !== undefined && (st.isDirectory() || st.isSymbolicLink()) ? judge(d, st, uid, sharedOnly) : undefined;
      if (bad) return bad;
      if (d === path.dirname(d)) break;
    }
  }
  return undefined;
}
