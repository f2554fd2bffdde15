/**
 * Locating and spawning the project's real binaries (bin/*.js → their bundle in dist/cli/ when
 * it matches the compiled code, else dist/src/<component>/main.js; bin/load-bundle.js) from
 * end-to-end tests. Tests run from dist/, so the repository root is three levels up
 * from this compiled file (dist/test/helpers/bin.js).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export type BinName = 'spike' | 'spike-nexus' | 'spike-keeper' | 'spike-bootstrap' | 'spike-agent';

/** A binary's entry file, in this checkout or in the package at `root`. */
export function binPath(name: BinName, root = REPO_ROOT): string {
  return path.join(root, 'bin', `${name}.js`);
}

/**
 * The command line that starts a binary the way its users start it: `spike` as a command, so its
 * launcher line runs (bin/spike.js starts itself as `node --use-openssl-ca …`), the servers with
 * `node` as their service units do. Spawn it with {@link binEnvPath} as PATH.
 */
export function binCommand(name: BinName, root = REPO_ROOT): string[] {
  return name === 'spike' ? [binPath(name, root)] : [process.execPath, binPath(name, root)];
}

/** PATH for a spawned binary: the directory of this run's `node` first, so a launcher starts the same Node. */
export function binEnvPath(): string {
  return [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter);
}

/** Spawns a binary ({@link binCommand}), inheriting nothing but the given environment (plus PATH). */
export function spawnBin(name: BinName, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const env = { PATH: binEnvPath(), HOME: process.env['HOME'] ?? '/root', ...(opts.env ?? {}) };
  const [file, ...pre] = binCommand(name);
  return spawn(file!, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts, env });
}
