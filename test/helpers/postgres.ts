/**
 * A throw-away PostgreSQL server for tests (no mock database anywhere, issue 8).
 *
 * `startPostgres()`:
 * 1. makes sure the server binaries exist: when `/usr/lib/postgresql/<n>/bin/initdb` is
 *    missing it runs `apt-get update && apt-get install -y postgresql` (Debian's packages;
 *    the test process is root on CI and developer machines), under an exclusive `flock`
 *    so test files started in parallel install once. Already installed → a directory
 *    listing, nothing else. When the install is impossible (not root, no network), it
 *    THROWS with a readable message: a postgres test must fail, never skip silently;
 * 2. creates a cluster in a fresh temp folder owned by the `postgres` user (the server
 *    refuses to run as root): a copy of a template made once per machine with
 *    `initdb -A trust` (one initdb per cluster cost ~1 s of CPU each), and starts it with
 *    `pg_ctl` on a free port, `listen_addresses=127.0.0.1` and its unix socket in that same folder;
 * 3. creates a database and returns its `connectionString`.
 *
 * The returned handle can create more databases, take the server down and up again
 * (data kept: the restart-under-load tests), `restart()` it, and `stop()` it, which also
 * removes the folder. A process `exit` hook stops any server still running, so a failed
 * test never leaks a postmaster.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APT_INSTALL_LOCK, aptInstallScript } from './apt.js';
import { freePort } from './ports.js';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestPostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/<db>` of the database created at start. */
  connectionString: string;
  port: number;
  /** The cluster's folder (data, log, socket). */
  dir: string;
  /** The data directory inside `dir`. */
  dataDir: string;
  /** The server's log file. */
  logFile: string;
  /** The PostgreSQL bin folder (pg_dump, psql, …). */
  binDir: string;
  /** Creates another empty database and returns its connection string. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Shutdown with data kept: `fast` (default; sessions terminated, clean checkpoint) or
   * `immediate` (like a crash: no checkpoint, WAL replayed at the next start).
   */
  down(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts the server again after `down()`, same port. */
  up(): Promise<void>;
  /** `down()` then `up()`. */
  restart(): Promise<void>;
  /** Runs SQL with `psql` as the superuser (tests that inspect the raw database). */
  psql(sql: string, database?: string): Promise<string>;
  /** Stops the server (immediate: nothing is kept) and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Name of the first database (default `spike`). */
  database?: string;
  /** `fsync` on (default) — off only for tests that do not care about durability. */
  fsync?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}


function findBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  let versions: string[];
  try {
    versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v));
  } catch {
    return null;
  }
  versions.sort((a, b) => Number(a) - Number(b));
  for (const v of versions.reverse()) {
    const bin = path.join(base, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

let cachedBin: string | null = null;

/** The PostgreSQL bin folder, installing Debian's `postgresql` first when needed. */
export function ensurePostgresInstalled(): string {
  if (cachedBin) return cachedBin;
  let bin = findBinDir();
  if (!bin) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot) {
      throw new Error('PostgreSQL server binaries are missing and this test is not root, so it cannot run '
        + '`apt-get install -y postgresql`. Install the Debian package `postgresql` and run the tests again.');
    }
    // flock: parallel test files install once; the check inside the lock skips a finished install.
    const script = `ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { ${aptInstallScript(['postgresql'])}; }`;
    const r = spawnSync('flock', [APT_INSTALL_LOCK, 'sh', '-c', script], { encoding: 'utf8', timeout: 600_000 });
    bin = findBinDir();
    if (!bin) {
      const tail = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-5).join('\n');
      throw new Error('Could not install PostgreSQL for the tests (`apt-get update && apt-get install -y postgresql` '
        + `failed${r.error ? `: ${r.error.message}` : `, exit ${String(r.status)}`}). These tests need a real PostgreSQL `
        + `server; they do not skip.\n${tail}`);
    }
  }
  cachedBin = bin;
  return bin;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

let serverIds: { uid: number; gid: number } | undefined;

/** The `postgres` user's uid and gid (asked once per process): as root, the servers run as it. */
function serverUser(): { uid: number; gid: number } {
  serverIds ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
  return serverIds;
}

/** Runs a server binary as `postgres` when we are root (the server refuses root). */
function asServerUser(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

const running = new Set<string>(); // data folders of servers this process started
let exitHookInstalled = false;

function installExitHook(bin: string): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const data of running) {
      const [cmd, args] = asServerUser(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
      fs.rmSync(path.dirname(data), { recursive: true, force: true });
    }
  });
}

const INITDB_ARGS = (data: string): string[] => ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'];
const TEMPLATE_LOCK = path.join(os.tmpdir(), 'spike-ts-postgres-template.lock');
let templatePromise: Promise<string | null> | undefined;

/**
 * The data folder of a never-started cluster made by `initdb` once per machine, user and server
 * version; a new cluster is a `cp -a` of it (~0.1 s) instead of its own `initdb` (~1 s of CPU,
 * and a test run starts dozens). The first caller makes it under `flock` (folder renamed into
 * place when complete, so a half-made template is never used). Used only when it belongs to the
 * server user and nobody else can read it; otherwise null and every cluster runs `initdb`.
 * The folder initdb writes is made (mode 0700, owned by the server user) before it runs: run as
 * root, initdb runs as `postgres`, which cannot create a folder in a temp folder that only root
 * may write (TMPDIR=/tmp/some-root-dir); before, every cluster then paid for its own initdb.
 */
function templateCluster(bin: string): Promise<string | null> {
  templatePromise ??= (async () => {
    const uid = isRoot() ? serverUser().uid : process.getuid?.() ?? 0;
    const version = path.basename(path.dirname(bin)).replace(/[^A-Za-z0-9.]/g, '_');
    const dir = path.join(os.tmpdir(), `spike-ts-pg-template-${version}-${uid}`);
    const [cmd, args] = asServerUser(path.join(bin, 'initdb'), INITDB_ARGS(`${dir}.tmp`));
    // $1 is the template folder, $2 the server user's uid:gid ('' when not root), the rest the
    // initdb command line (which writes "$1.tmp").
    const script = 'T=$1; U=$2; shift 2; test -f "$T/PG_VERSION" || { rm -rf "$T.tmp" && mkdir -m 700 "$T.tmp" && { test -z "$U" || chown "$U" "$T.tmp"; } && "$@" >/dev/null && mv "$T.tmp" "$T"; }';
    const owner = isRoot() ? `${uid}:${serverUser().gid}` : '';
    try {
      await run('flock', [TEMPLATE_LOCK, 'sh', '-c', script, 'sh', dir, owner, cmd, ...args], { timeout: 120_000 });
      const st = fs.lstatSync(dir);
      if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return null;
      return dir;
    } catch {
      return null;
    }
  })();
  return templatePromise;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<TestPostgres> {
  const bin = ensurePostgresInstalled();
  installExitHook(bin);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  if (isRoot()) {
    const { uid, gid } = serverUser();
    fs.chownSync(dir, uid, gid);
  }
  fs.chmodSync(dir, 0o700);

  const exec = async (name: string, args: string[], timeout = 60_000): Promise<string> => {
    const [cmd, a] = asServerUser(path.join(bin, name), args);
    try {
      const { stdout } = await run(cmd, a, { timeout, encoding: 'utf8', maxBuffer: 64 << 20 });
      return stdout;
    } catch (e) {
      let serverLog = '';
      try {
        serverLog = fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
      } catch {
        // no log yet
      }
      const err = e as { stderr?: string; message?: string };
      throw new Error(`${name} failed: ${err.stderr ?? err.message ?? 'unknown error'}\n${serverLog}`);
    }
  };

  // A copy of the machine's template cluster (one initdb per machine, see templateCluster), or
  // this cluster's own initdb when there is no usable template.
  const template = await templateCluster(bin);
  if (template !== null) await run('cp', ['-a', template, data], { timeout: 60_000 });
  else await exec('initdb', INITDB_ARGS(data));
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    fsync: opts.fsync === false ? 'off' : 'on',
    max_connections: '200',
    shared_buffers: '32MB',
    ...opts.settings,
  };
  let port = 0;
  const serverOptions = (): string =>
    [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const start = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', serverOptions(), 'start']);
    running.add(data);
  };
  const downFn = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    if (!running.has(data)) return;
    await exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    running.delete(data);
  };

  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (e) {
      if (attempt >= 4) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  const psql = async (sql: string, database = 'postgres'): Promise<string> => {
    const { stdout } = await run(path.join(bin, 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', database, '-c', sql],
      { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 60_000 });
    return stdout;
  };
  const url = (db: string): string => `postgresql://postgres@127.0.0.1:${port}/${db}`;
  let dbCounter = 0;
  const createDatabase = async (name?: string): Promise<string> => {
    const db = name ?? `spike_t${++dbCounter}_${process.pid}`;
    if (!/^[a-z_][a-z0-9_]*$/.test(db)) throw new Error('database names here are lower-case identifiers');
    await psql(`CREATE DATABASE ${db}`);
    return url(db);
  };

  const first = opts.database ?? 'spike';
  let stopped = false;
  try {
    await createDatabase(first);
  } catch (e) {
    await downFn().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    connectionString: url(first),
    port,
    dir,
    dataDir: data,
    logFile: log,
    binDir: bin,
    createDatabase,
    down: downFn,
    up: async () => {
      if (!running.has(data)) await start();
    },
    restart: async () => {
      await downFn('fast');
      await start();
    },
    psql,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        // `immediate`: the folder is removed next, so no shutdown checkpoint (~1 s less per cluster).
        await downFn('immediate');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
