/**
 * The dev-stack hint: what `spike` may take from the dev state folder (`./.spike`, or
 * `$SPIKE_DEV_DIR` from the real environment) when nothing else says where to go.
 *
 * The folder may come from a hostile checkout (`git clone` of a repository that ships a
 * `.spike/`), so only what such a checkout cannot forge is used, and only the minimum the
 * dev stack needs:
 *
 * - **the Workload API socket** `<dir>/sockets/<role>.sock`, when `<dir>` is a real directory
 *   (not a symlink) owned by the caller and not writable by group or others, `sockets/` is a
 *   real directory owned by the caller with mode 0700 (no group/other bits), and the socket is
 *   a real unix socket (not a symlink) owned by the caller. A repository cannot ship a socket:
 *   only a process running on this machine as this user can have made it. `tcp://` endpoints
 *   are never taken from the folder;
 * - **the Nexus URL** from `<dir>/env` (`SPIKE_NEXUS_API_URL=…`, written by `npm start`), read
 *   only together with that socket, only from a regular file (not a symlink) owned by the
 *   caller and not writable by group or others, and only when it is one loopback `https` URL
 *   with an explicit port (`127.0.0.1`, `[::1]` or `localhost`). Even a local impostor on that
 *   port cannot pass the client's check that the server presents the Nexus SPIFFE ID issued
 *   by the Workload API the socket leads to.
 *
 * Everything else in the file (other Workload API addresses, trust roots, the recovery folder,
 * timeouts, log levels, …) is ignored, with a one-line warning naming the ignored variables.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../sdk/index.js';

const ENV_FILE_MAX = 64 * 1024;
const ENV_NAME_RE = /^(SPIKE|SPIFFE)_[A-Z0-9_]{1,100}$/;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '[::1]', 'localhost']);
const NEXUS_URL_VAR = 'SPIKE_NEXUS_API_URL';

/** The dev state folder: `$SPIKE_DEV_DIR` (real environment only) or `./.spike`. */
export function devDir(env: Env, cwd: string): string {
  const d = env['SPIKE_DEV_DIR'];
  return d !== undefined && d.trim() !== '' ? path.resolve(cwd, d.trim()) : path.join(cwd, '.spike');
}

function callerUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

/** Result of a check: `absent` when there is nothing at the path (no warning then). */
type Check = { ok: true } | { ok: false; absent: true } | { ok: false; absent: false; reason: string };

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/**
 * A folder of the hint: a real directory owned by the caller, not writable by group or others;
 * `private` also forbids any group/other permission (mode 0700).
 */
function checkHintDir(dir: string, opts: { private?: boolean } = {}): Check {
  const st = lstat(dir);
  if (!st) return { ok: false, absent: true };
  if (st.isSymbolicLink()) return { ok: false, absent: false, reason: 'is a symbolic link' };
  if (!st.isDirectory()) return { ok: false, absent: false, reason: 'is not a directory' };
  const uid = callerUid();
  if (uid !== undefined && st.uid !== uid) return { ok: false, absent: false, reason: 'is owned by another user' };
  if (opts.private && (st.mode & 0o077) !== 0) return { ok: false, absent: false, reason: 'is not private to you (mode must be 0700)' };
  if ((st.mode & 0o022) !== 0) return { ok: false, absent: false, reason: 'is writable by group or others' };
  return { ok: true };
}

/** The socket itself: a real unix socket (not a symlink) owned by the caller. */
function checkHintSocket(p: string): Check {
  const st = lstat(p);
  if (!st) return { ok: false, absent: true };
  if (st.isSymbolicLink()) return { ok: false, absent: false, reason: 'is a symbolic link' };
  if (!st.isSocket()) return { ok: false, absent: false, reason: 'is not a socket' };
  const uid = callerUid();
  if (uid !== undefined && st.uid !== uid) return { ok: false, absent: false, reason: 'is owned by another user' };
  return { ok: true };
}

/** Outcome of looking for the dev-stack socket `name` under `dir`. */
type DevSocket = { ok: true; path: string } | { ok: false; path: string; refused?: string };

/** The one-line warning for a refused dev-stack socket. */
export function devSocketWarning(s: { path: string; refused: string }): string {
  return `Warning: not using the dev stack socket ${s.path}: ${s.refused}.`;
}

/** Checks the dev-stack socket `<dir>/sockets/<name>.sock` (see the module comment). */
export function findDevSocket(dir: string, name: string): DevSocket {
  const sockets = path.join(dir, 'sockets');
  const p = path.join(sockets, `${name}.sock`);
  const steps: Array<[string, () => Check]> = [
    [dir, () => checkHintDir(dir)],
    [sockets, () => checkHintDir(sockets, { private: true })],
    [p, () => checkHintSocket(p)],
  ];
  for (const [what, check] of steps) {
    const c = check();
    if (c.ok) continue;
    if (c.absent) return { ok: false, path: p };
    return { ok: false, path: p, refused: `${what} ${c.reason}` };
  }
  return { ok: true, path: p };
}

/** Parses `NAME=value` lines; `#` comments, blank lines, `export` and quotes allowed; only SPIKE_/SPIFFE_ names kept. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line.slice(0, eq).trim().replace(/^export\s+/, '');
    if (!ENV_NAME_RE.test(name)) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'")))) {
      value = value.slice(1, -1);
    }
    out[name] = value;
  }
  return out;
}

/** Whether `raw` is one loopback `https` URL with an explicit port and nothing else (no path, user, query). */
export function isLoopbackNexusUrl(raw: string): boolean {
  if (raw.length > 200 || raw.includes(',')) return false;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return false;
  }
  return (
    u.protocol === 'https:' &&
    LOOPBACK_HOSTS.has(u.hostname) &&
    u.port !== '' &&
    u.username === '' &&
    u.password === '' &&
    (u.pathname === '' || u.pathname === '/') &&
    u.search === '' &&
    u.hash === '' &&
    !raw.includes('@') &&
    !raw.includes('?') &&
    !raw.includes('#')
  );
}

/** Reads a hint file: a regular file (not a symlink, not a FIFO) owned by the caller, not group/other-writable. */
function readHintFile(file: string): { text?: string; reason?: string; absent?: boolean } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return { absent: true };
    return { reason: code === 'ELOOP' ? 'is a symbolic link' : 'cannot be opened' };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { reason: 'is not a regular file' };
    const uid = callerUid();
    if (uid !== undefined && st.uid !== uid) return { reason: 'is owned by another user' };
    if ((st.mode & 0o022) !== 0) return { reason: 'is writable by group or others' };
    const buf = Buffer.alloc(ENV_FILE_MAX);
    const n = fs.readSync(fd, buf, 0, ENV_FILE_MAX, 0);
    return { text: buf.subarray(0, n).toString('utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

/** The Nexus URL of the dev-stack hint (`<dir>/env`), or why not; `path` is the file. */
interface DevNexusUrl {
  path: string;
  url?: string;
  warnings: string[];
}

/** Reads the Nexus URL hint; call only when the dev-stack socket of the same folder is in use. */
export function readDevNexusUrl(dir: string): DevNexusUrl {
  const file = path.join(dir, 'env');
  const r = readHintFile(file);
  if (r.absent) return { path: file, warnings: [] };
  if (r.text === undefined) return { path: file, warnings: [`Warning: not using ${file}: it ${r.reason ?? 'cannot be read'}.`] };
  const vars = parseEnvFile(r.text);
  const warnings: string[] = [];
  const ignored = Object.keys(vars).filter((k) => k !== NEXUS_URL_VAR);
  if (ignored.length > 0) {
    const shown = ignored.slice(0, 8).join(', ') + (ignored.length > 8 ? ', …' : '');
    warnings.push(`Warning: ignoring ${shown} in ${file} (only a loopback ${NEXUS_URL_VAR} is read from it).`);
  }
  const url = vars[NEXUS_URL_VAR]?.trim();
  if (url === undefined || url === '') return { path: file, warnings };
  if (!isLoopbackNexusUrl(url)) {
    warnings.push(`Warning: ignoring ${NEXUS_URL_VAR} in ${file} (the dev stack hint must be https://127.0.0.1, [::1] or localhost with a port).`);
    return { path: file, warnings };
  }
  return { path: file, url, warnings };
}
