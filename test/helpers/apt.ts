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

/** The shell command that installs `pkgs` (non-interactive, quiet). */
export function aptInstallScript(pkgs: readonly string[]): string {
  return `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs.join(' ')}`;
}

/**
 * Whether `cmd args…` runs here, installing Debian package `pkg` first when it does not (and
 * this process is root). Returns false when it still does not run.
 */
export function ensureCommand(cmd: string, args: readonly string[], pkg: string): boolean {
  const runs = (): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  if (runs()) return true;
  if (process.getuid?.() !== 0) return false;
  spawnSync('flock', [APT_INSTALL_LOCK, 'sh', '-c', aptInstallScript([pkg])], { stdio: 'ignore', timeout: 600_000 });
  return runs();
}
