/**
 * `spike-nexus backup <dest-file>` and `spike-nexus verify-backup <file>` (docs/backup.md):
 * run on the Nexus host with Nexus's own settings, while Nexus keeps serving. Only the
 * settings that locate the store are read (SPIKE_NEXUS_BACKEND_STORE, SPIKE_NEXUS_DATA_DIR,
 * SPIKE_NEXUS_DB_BUSY_TIMEOUT_MS), with Nexus's own readers and rules, so the command needs
 * neither the Keepers' addresses nor an SVID nor the root key: the backup is as sealed as the
 * store, and useless without the root key (the recovery shards).
 */
import path from 'node:path';
import { resolveDataDir } from '../config/index.js';
import { int, oneOf, type Env } from '../lib/index.js';
import { BackupError, backupSqliteFile, verifySqliteBackup, type BackupInfo } from '../store/index.js';

export const BACKUP_USAGE = `usage: spike-nexus backup [--force] <dest-file>
       spike-nexus verify-backup <file>

backup: a consistent online copy of the SQLite store (SPIKE_NEXUS_DATA_DIR/data/spike.db)
  while Nexus keeps serving; written atomically, mode 0600. The destination folder must
  exist and lie outside the data directory; an existing file is replaced only with --force.
  The copy is encrypted like the store: restoring it needs the root key (recovery shards).
verify-backup: checks a backup file (SQLite integrity, SPIKE schema) and counts its records,
  without the root key and without changing it.
See docs/backup.md.
`;

const BACKENDS = ['sqlite', 'lite', 'memory', 'postgres'] as const;

/** The store file Nexus would open with `env`, or a refusal for backends without one. */
function storeFile(env: Env): { file: string; busyTimeoutMs: number } {
  const backend = oneOf(env, 'SPIKE_NEXUS_BACKEND_STORE', BACKENDS, 'sqlite');
  switch (backend) {
    case 'sqlite':
      return {
        file: path.join(resolveDataDir(env), 'spike.db'),
        busyTimeoutMs: int(env, 'SPIKE_NEXUS_DB_BUSY_TIMEOUT_MS', 5000, 1, 600_000),
      };
    case 'postgres':
      throw new BackupError('backup_refused',
        'the postgres backend is backed up with PostgreSQL\'s own tools (pg_dump, or base backups with WAL archiving); see docs/backup.md');
    case 'memory':
      throw new BackupError('backup_refused', 'the memory backend keeps nothing on disk: there is nothing to back up');
    case 'lite':
      throw new BackupError('backup_refused', 'the lite backend stores no secrets or policies: there is nothing to back up');
  }
}

function describe(info: BackupInfo): string {
  return `${info.bytes} bytes; ${info.secrets} secrets, ${info.secretVersions} secret versions, ${info.policies} policies`
    + (info.initialised ? '' : '; not yet bootstrapped');
}

function usageError(msg: string): never {
  throw new BackupError('backup_refused', `${msg} (spike-nexus backup --help)`);
}

/** `spike-nexus backup …`: returns the text for stdout; throws a one-line error. */
export async function runBackup(args: string[], env: Env): Promise<string> {
  if (args.includes('--help') || args.includes('-h')) return BACKUP_USAGE;
  let force = false;
  const files: string[] = [];
  for (const a of args) {
    if (a === '--force') force = true;
    else if (a.startsWith('-') && a !== '-') usageError(`unknown option ${a}`);
    else files.push(a);
  }
  if (files.length !== 1 || files[0] === '' || files[0] === '-') usageError('expected exactly one destination file');
  const { file, busyTimeoutMs } = storeFile(env);
  const info = await backupSqliteFile({ source: file, dest: files[0]!, force, busyTimeoutMs });
  return `backup written to ${info.file} (${describe(info)})\n`
    + 'it is encrypted with the root key: keep the recovery shards (apart from it) to restore it\n';
}

/** `spike-nexus verify-backup <file>`: returns the text for stdout; throws a one-line error. */
export function runVerifyBackup(args: string[]): string {
  if (args.includes('--help') || args.includes('-h')) return BACKUP_USAGE;
  if (args.length !== 1 || args[0]!.startsWith('-')) usageError('expected exactly one backup file');
  const info = verifySqliteBackup(args[0]!);
  return `backup ${info.file} is intact (${describe(info)})\n`;
}
