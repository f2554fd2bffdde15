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

export function binPath(name: BinName): string {
  return path.join(REPO_ROOT, 'bin', `${name}.js`);
}

/** Spawns a binary with `node`, inheriting nothing but the given environment (plus PATH). */
export function spawnBin(name: BinName, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const env = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...(opts.env ?? {}) };
  return spawn(process.execPath, [binPath(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts, env });
}
