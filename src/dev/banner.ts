/**
 * What `npm start` prints once the dev stack is ready: the exact commands to use it from
 * another terminal, copy-pasteable as they are. When `SPIKE_DEV_DIR` is set, every `spike`
 * command carries `SPIKE_DEV_DIR=<absolute dir>` (spike finds the dev stack through that
 * folder), so the lines work from any shell; the folder the commands run in is named too
 * (`npx spike` resolves the CLI of this checkout).
 */
import { shellQuote } from './state.js';

export interface BannerFacts {
  /** Folder `npm start` runs in (where `npx spike` works). */
  cwd: string;
  /** Absolute dev state folder. */
  dir: string;
  /** Whether `SPIKE_DEV_DIR` was set (then the commands must carry it). */
  devDirSet: boolean;
  /** Operations URLs: Nexus first, then each Keeper. */
  opsUrls: readonly string[];
  auditLog: string;
}

/** The banner lines (without the "[dev]" prefix of the log lines). */
export function bannerLines(f: BannerFacts): string[] {
  const spike = `${f.devDirSet ? `SPIKE_DEV_DIR=${shellQuote(f.dir)} ` : ''}npx spike`;
  const [nexus, ...keepers] = f.opsUrls;
  return [
    'SPIKE ready',
    '',
    `From another terminal, in ${shellQuote(f.cwd)}:`,
    `  ${spike} secret put secrets/db/creds username=admin password=s3cret`,
    `  ${spike} secret get secrets/db/creds`,
    `  ${spike} policy list`,
    'A value from a file or stdin (keeps it off the command line):',
    `  ${spike} secret put secrets/db/creds password=@password.txt`,
    `  printf %s "$PASSWORD" | ${spike} secret put secrets/db/creds password=-`,
    `Recovery shards (written into ${path(f.dir, 'recovery')}):`,
    `  ${spike} operator recover`,
    'Shell completion:',
    `  source <(${spike} completion bash)`,
    `Probes and metrics (plain HTTP, loopback; also in ${path(f.dir, 'env')}):`,
    ...(nexus !== undefined ? [`  nexus    ${nexus}/readyz  ${nexus}/metrics`] : []),
    ...keepers.map((u, i) => `  keeper-${i + 1} ${u}/readyz  ${u}/metrics`),
    `Audit trail: ${f.auditLog}; check it with:`,
    `  ${spike} audit verify ${shellQuote(f.auditLog)}`,
    'Press Ctrl-C to stop.',
  ];
}

function path(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '')}/${name}`;
}
