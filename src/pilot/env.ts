/**
 * Where Pilot finds its identity and Nexus, with zero setup for the dev stack.
 *
 * After `npm start` in a folder, `npx spike …` from another terminal in the same folder just
 * works: the dev stack keeps its state in `./.spike/` (or `$SPIKE_DEV_DIR`), with one Workload
 * API socket per identity in `sockets/` (`pilot.sock`, `recover.sock`, `restore.sock`) and an
 * `env` file of `NAME=value` lines (e.g. `SPIKE_NEXUS_API_URL=https://127.0.0.1:…`).
 *
 * Precedence for the Workload API address:
 *   1. `--socket <name|path>` (a bare name means `<dev dir>/sockets/<name>.sock`);
 *   2. `SPIFFE_ENDPOINT_SOCKET` from the real environment;
 *   3. the dev socket for the command's role, when it exists;
 *   4. `SPIFFE_ENDPOINT_SOCKET` from the dev `env` file, else the SPIRE default.
 * Other variables from the dev `env` file (only `SPIKE_*` / `SPIFFE_*` names) fill in what the
 * real environment leaves unset.
 *
 * The dev folder is trusted only when it is a real directory owned by the current user and
 * not writable by group or others; otherwise it is ignored with a one-line warning (a
 * hostile checkout must not be able to point Pilot at another Nexus or identity).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../sdk/roles.js';
import { usageError } from './errors.js';

export type PilotRole = 'operator' | 'recover' | 'restore';

const ROLE_SOCKET: Record<PilotRole, string> = { operator: 'pilot', recover: 'recover', restore: 'restore' };

const ENV_FILE_MAX = 64 * 1024;
const ENV_NAME_RE = /^(SPIKE|SPIFFE)_[A-Z0-9_]{1,100}$/;

/** The dev state folder: `$SPIKE_DEV_DIR` or `./.spike`. */
export function devDir(env: Env, cwd: string): string {
  const d = env['SPIKE_DEV_DIR'];
  return d !== undefined && d.trim() !== '' ? path.resolve(cwd, d.trim()) : path.join(cwd, '.spike');
}

/** Whether a dev folder exists and may be trusted; `warning` explains why not. */
export function checkDevDir(dir: string): { ok: boolean; warning?: string } {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    return { ok: false };
  }
  if (!st.isDirectory()) return { ok: false, warning: `Warning: ignoring ${dir} (not a directory).` };
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && st.uid !== uid) return { ok: false, warning: `Warning: ignoring ${dir} (owned by another user).` };
  if ((st.mode & 0o022) !== 0) return { ok: false, warning: `Warning: ignoring ${dir} (writable by group or others).` };
  return { ok: true };
}

/** Parses `NAME=value` lines; `#` comments and blank lines allowed; other names are ignored. */
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

function readEnvFile(file: string): Record<string, string> {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return Object.create(null) as Record<string, string>;
  }
  try {
    const buf = Buffer.alloc(ENV_FILE_MAX);
    const n = fs.readSync(fd, buf, 0, ENV_FILE_MAX, 0);
    return parseEnvFile(buf.subarray(0, n).toString('utf8'));
  } finally {
    fs.closeSync(fd);
  }
}

export interface ResolvedEnv {
  /** Environment for the SDK: the real one, with dev-file values for unset names. */
  env: Env;
  /** Workload API address to use, or undefined for the SDK default (`SPIFFE_ENDPOINT_SOCKET` / SPIRE path). */
  endpoint: string | undefined;
  /** Warnings to print (one line each) on stderr. */
  warnings: string[];
}

function socketAddress(p: string): string {
  return `unix://${p}`;
}

function isSocket(p: string): boolean {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** Resolves the environment and Workload API address for one command run. */
export function resolvePilotEnv(opts: { env: Env; cwd: string; role: PilotRole; socket?: string | undefined }): ResolvedEnv {
  const warnings: string[] = [];
  const dir = devDir(opts.env, opts.cwd);
  const check = checkDevDir(dir);
  if (check.warning) warnings.push(check.warning);
  const fileEnv = check.ok ? readEnvFile(path.join(dir, 'env')) : (Object.create(null) as Record<string, string>);
  const merged: Record<string, string | undefined> = { ...fileEnv };
  for (const [k, v] of Object.entries(opts.env)) if (v !== undefined && v !== '') merged[k] = v;

  let endpoint: string | undefined;
  const sock = opts.socket?.trim();
  if (sock !== undefined && sock !== '') {
    if (sock.startsWith('unix:')) endpoint = sock;
    else if (sock.includes('/')) endpoint = socketAddress(path.resolve(opts.cwd, sock));
    else if (/^[A-Za-z0-9._-]{1,64}$/.test(sock) && sock !== '.' && sock !== '..') {
      endpoint = socketAddress(path.join(dir, 'sockets', sock.endsWith('.sock') ? sock : `${sock}.sock`));
    } else throw usageError('Error: Invalid --socket value (use a socket name such as "restore", or a path).');
  } else if (opts.env['SPIFFE_ENDPOINT_SOCKET'] !== undefined && opts.env['SPIFFE_ENDPOINT_SOCKET'] !== '') {
    endpoint = opts.env['SPIFFE_ENDPOINT_SOCKET'];
  } else if (check.ok) {
    const p = path.join(dir, 'sockets', `${ROLE_SOCKET[opts.role]}.sock`);
    if (isSocket(p)) endpoint = socketAddress(p);
    else endpoint = fileEnv['SPIFFE_ENDPOINT_SOCKET'];
  }
  return { env: merged, endpoint, warnings };
}
