/**
 * Debian packages the tests need (strace, zsh, the sqlite3 shell, PostgreSQL), installed on
 * first use: CI starts from a fresh machine where the test process is root, and nothing
 * installed by hand survives. Every install runs under one exclusive `flock`, so test files
 * started in parallel neither race for dpkg's lock nor install twice; `apt-get update` runs
 * first, since a fresh machine may have no package lists at all.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

/** The lock every test-time install holds. */
export const APT_INSTALL_LOCK = path.join(os.tmpdir(), 'spike-ts-apt-install.lock');

/** The shell command that installs `pkgs` (non-interactive, quiet; waits for dpkg's own lock too). */
export function aptInstallScript(pkgs: readonly string[]): string {
  return `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 ${pkgs.join(' ')}`;
}

/** Quotes one shell word. */
const sh = (w: string): string => `'${w.replace(/'/g, `'\\''`)}'`;

/**
 * Whether `cmd args…` runs here, installing Debian package `pkg` first when it does not (and
 * this process is root). Returns false when it still does not run.
 */
export function ensureCommand(cmd: string, args: readonly string[], pkg: string): boolean {
  const runs = (): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  if (runs()) return true;
  if (process.getuid?.() !== 0) return false;
  // Checked again inside the lock: a test file that waited for another's install skips its own.
  const check = [cmd, ...args].map(sh).join(' ');
  const r = spawnSync('flock', [APT_INSTALL_LOCK, 'sh', '-c', `${check} >/dev/null 2>&1 || { ${aptInstallScript([pkg])}; }`], { encoding: 'utf8', timeout: 600_000 });
  if (runs()) return true;
  process.stderr.write(`could not install ${pkg} for the tests: ${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ') || (r.error?.message ?? `exit ${String(r.status)}`)}\n`);
  return false;
}
