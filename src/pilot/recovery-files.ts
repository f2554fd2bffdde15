/**
 * Break-the-glass recovery files (`spike operator recover`; the operator's guide is
 * docs/recovery.md).
 *
 * Directory: `--out` (alias `--dir`) if given; else `SPIKE_PILOT_RECOVERY_DIR/recover`; else,
 * when the command talks to the `npm start` dev stack, that stack's recovery area
 * `<dev dir>/recovery` (only when the dev folder is one npm start created: its marker holds
 * the folder's inode, which a checkout cannot forge); else the command asks for `--out`:
 * shards are never written silently into `$HOME`. A directory we
 * create gets mode 0700; an existing one must be a real directory (not a symlink) owned by
 * us with no group/other permissions, otherwise we refuse (we never chmod a directory we did
 * not create). The folders above it must belong to root or us and be writable by nobody else
 * unless sticky (like /tmp), or someone could swap the directory for a symlink between the
 * check and the write. System folders (`/`, `/etc`, `/usr`, …) and paths with `..` are refused.
 *
 * Files: `spike.recovery.<id>.txt`, content `spike:<id>:<64 lowercase hex>` (no newline),
 * mode 0600. Each is written to a fresh temp file in the same directory opened with
 * `O_CREAT|O_EXCL|O_NOFOLLOW`, fsynced, then renamed over the final name; the directory is
 * fsynced at the end. So after a crash (even `kill -9`) each shard file is complete or
 * absent (OPR-13, FI-21); a rename replaces a planted symlink instead of
 * following it. Leftover temp files of an interrupted run are removed by the next run.
 *
 * Overwrite rule: existing shard files that hold exactly the shares being written are fine
 * (a re-run after a crash succeeds) when they are private (0600 or narrower, ours, one link);
 * with wider modes or a second hard link they are rewritten as fresh 0600 files; any other `spike.recovery*.txt` (different content, a
 * share id not in this set, a symlink or non-regular file) makes the command refuse unless
 * `force` is set; with `force` they are replaced, and stale extra shard files removed after
 * the new set is in place. Shard bytes live in Buffers that are zeroed after use.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { formatRecoveryFile, recoveryFileName } from '../crypto/curve-free.js';
import type { Share, Env } from '../sdk/index.js';
import { foreignAncestor } from '../lib/index.js';
import { PilotError, usageError } from './errors.js';

const SHARD_FILE_RE = /^spike\.recovery.*\.txt$/;
const TEMP_FILE_RE = /^\.spike\.recovery\.[0-9]+\.[0-9a-f]{16}\.tmp$/;
const FORBIDDEN_ROOTS = ['/etc', '/sys', '/proc', '/dev', '/bin', '/sbin', '/usr', '/lib', '/lib64', '/boot'];
const MAX_EXISTING_FILE = 4096;

function fail(line: string): never {
  throw new PilotError(line, { code: 'pilot_recovery_files' });
}

/** Checks a user-chosen directory path (the rules of SPIKE's data-dir validation). */
function checkCustomDir(p: string): void {
  if (p.trim() === '') fail('Error: Invalid recovery directory path (empty).');
  if (p.split(/[\\/]+/).includes('..')) fail('Error: Invalid recovery directory path (contains "..").');
  const abs = path.resolve(p);
  if (abs === '/') fail('Error: Invalid recovery directory path (the root directory).');
  for (const r of FORBIDDEN_ROOTS) {
    if (abs === r || abs.startsWith(`${r}/`)) fail('Error: Invalid recovery directory path (a system directory).');
  }
}

/** Resolves the recovery directory (see module comment); `dev` is the dev stack's recovery area, or why it cannot be used. */
export function resolveRecoveryDir(env: Env, cwd: string, dirOption?: string, dev?: { dir: string } | { refused: string }): string {
  if (dirOption !== undefined) {
    checkCustomDir(dirOption);
    return path.resolve(cwd, dirOption);
  }
  const custom = env['SPIKE_PILOT_RECOVERY_DIR'];
  if (custom !== undefined && custom.trim() !== '') {
    checkCustomDir(custom);
    return path.join(path.resolve(cwd, custom.trim()), 'recover');
  }
  if (dev !== undefined && 'dir' in dev) return dev.dir;
  const why = dev !== undefined ? ` (not using the dev stack folder: ${dev.refused})` : '';
  throw usageError(`Error: Say where the recovery shards go: --out <dir> (or set SPIKE_PILOT_RECOVERY_DIR)${why}.`);
}

/**
 * The folders above the recovery directory, both as written and as resolved through symlinks,
 * must belong to root or to us and be writable by nobody else unless sticky (like /tmp):
 * otherwise someone else could rename our directory away between this check and the write
 * (shards are fetched in between) and put a symlink to their own folder in its place.
 */
function checkAncestors(abs: string, uid: number): void {
  const bad = foreignAncestor(abs, uid);
  if (bad === undefined) return;
  if (bad.why === 'unresolvable') fail(`Error: Cannot resolve the parent folders of the recovery directory ${abs}.`);
  if (bad.why === 'owner') fail(`Error: The folder ${bad.path} above the recovery directory belongs to another user; choose another directory.`);
  fail(`Error: The folder ${bad.path} above the recovery directory is writable by group or others (and not sticky); choose another directory.`);
}

/**
 * Makes `abs` (and missing parents) mode 0700. The folder itself is made without `recursive`
 * and its mode set through a descriptor opened without following links: a symlink someone
 * put at `abs` after we looked (the name is in a folder they may write, e.g. /tmp) is refused,
 * never followed, so no folder it points to is changed.
 */
export function makePrivateDir(abs: string): void {
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
  let fd: number | undefined;
  try {
    fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o700 });
    fs.mkdirSync(abs, { mode: 0o700 });
    fd = fs.openSync(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    fs.fchmodSync(fd, 0o700); // umask may have removed bits we want; never adds group/other
  } catch {
    fail(`Error: Cannot create the recovery directory ${abs}.`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Creates the directory (0700) or checks an existing one; returns its absolute path.
 * Call before fetching shards so a bad directory fails early.
 */
export function prepareRecoveryDir(dir: string): string {
  const abs = path.resolve(dir);
  const me = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (me !== undefined) {
    // New parents are created 0700 below; check the ones that exist now, then again once made.
    let existing = path.dirname(abs);
    while (!fs.existsSync(existing) && existing !== path.dirname(existing)) existing = path.dirname(existing);
    checkAncestors(path.join(existing, 'x'), me);
  }
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(abs);
  } catch {
    st = undefined;
  }
  if (st === undefined) {
    makePrivateDir(abs);
    st = fs.lstatSync(abs);
  }
  if (st.isSymbolicLink()) fail(`Error: The recovery directory ${abs} is a symbolic link; refusing to use it.`);
  if (!st.isDirectory()) fail(`Error: The recovery directory ${abs} is not a directory.`);
  const uid = me;
  if (uid !== undefined && st.uid !== uid) fail(`Error: The recovery directory ${abs} belongs to another user.`);
  if (uid !== undefined) checkAncestors(abs, uid);
  if ((st.mode & 0o077) !== 0) {
    fail(`Error: The recovery directory ${abs} is accessible by group or others; run \`chmod 700 ${abs}\` or choose another directory.`);
  }
  return abs;
}

/**
 * An existing shard file's bytes (a regular file, not followed through a symlink, at most
 * 4 KiB), and whether only we can read it under this one name: mode 0600 or narrower, our
 * uid, one link. O_NONBLOCK: a FIFO planted under the name cannot block the open.
 */
function readExistingShardFile(file: string): { bytes: Buffer; private: boolean } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    const buf = Buffer.alloc(MAX_EXISTING_FILE + 1);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const out = Buffer.from(buf.subarray(0, n));
    buf.fill(0);
    if (n > MAX_EXISTING_FILE) return (out.fill(0), undefined);
    return { bytes: out, private: (st.mode & 0o077) === 0 && st.nlink === 1 && st.uid === uid };
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | (fs.constants.O_DIRECTORY ?? 0));
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the renames are still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes one file atomically (temp + fsync + rename). */
function writeAtomic(dir: string, id: number, content: Buffer): string {
  const final = path.join(dir, recoveryFileName(id));
  const tmp = path.join(dir, `.spike.recovery.${id}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    writeAll(fd, content);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, final);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return final;
}

interface WriteResult {
  /** Absolute paths of the shard files, by share id. */
  files: string[];
  /** Files that already held the right content and were left as they were. */
  unchanged: number;
  /** Stale shard files removed (only with force). */
  removed: number;
}

/**
 * Writes one file per share into `dir` (which {@link prepareRecoveryDir} has checked).
 * The caller still owns (and wipes) the share buffers.
 */
export function writeRecoveryFiles(dir: string, shares: readonly Share[], opts: { force: boolean }): WriteResult {
  if (shares.length === 0) fail('Error: No shards to write.');
  const ids = new Set<number>();
  for (const s of shares) {
    if (ids.has(s.id)) fail('Error: Duplicate shard id in the response.');
    ids.add(s.id);
  }
  const contents = new Map<number, Buffer>();
  try {
    for (const s of shares) contents.set(s.id, formatRecoveryFile(s));

    // 1. Inspect what is there before writing anything.
    const entries = fs.readdirSync(dir);
    const conflicts: string[] = [];
    const upToDate = new Set<number>();
    const stale: string[] = [];
    for (const name of entries) {
      if (TEMP_FILE_RE.test(name)) {
        fs.rmSync(path.join(dir, name), { force: true }); // debris of an interrupted run (0600, ours)
        continue;
      }
      if (!SHARD_FILE_RE.test(name)) continue;
      const m = /^spike\.recovery\.([1-9][0-9]{0,3})\.txt$/.exec(name);
      const id = m ? Number(m[1]) : undefined;
      const want = id !== undefined ? contents.get(id) : undefined;
      if (want === undefined) {
        stale.push(name);
        conflicts.push(name);
        continue;
      }
      const have = readExistingShardFile(path.join(dir, name));
      const same = have !== undefined && have.bytes.length === want.length && timingSafeEqual(have.bytes, want);
      have?.bytes.fill(0);
      // The same share in a file others can read, or with a second name elsewhere, is
      // rewritten (a fresh 0600 file), never reported as saved as it is.
      if (same && have?.private === true) upToDate.add(id!);
      else if (!same) conflicts.push(name);

    }
    if (conflicts.length > 0 && !opts.force) {
      fail(
        `Error: ${conflicts.length} recovery file(s) in ${dir} differ from the current shards; move them away or re-run with --force to replace them.`,
      );
    }

    // 2. Write every share that is not already in place.
    const files: string[] = [];
    for (const s of [...shares].sort((a, b) => a.id - b.id)) {
      const final = path.join(dir, recoveryFileName(s.id));
      if (!upToDate.has(s.id)) writeAtomic(dir, s.id, contents.get(s.id)!);
      files.push(final);
    }
    // 3. With --force, drop shard files that are not part of this set.
    for (const name of stale) fs.rmSync(path.join(dir, name), { force: true });
    fsyncDir(dir);
    return { files, unchanged: upToDate.size, removed: stale.length };
  } finally {
    for (const b of contents.values()) b.fill(0);
  }
}
