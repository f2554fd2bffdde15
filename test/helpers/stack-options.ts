/**
 * What an end-to-end stack (`stack.ts`) is started with: its options, the backends the
 * parameterised suites run against, the trust domain and the identities its agent serves.
 */

export interface StackOptions {
  backend?: 'sqlite' | 'memory' | 'lite' | 'postgres';
  keepers?: number;
  threshold?: number;
  bootstrap?: boolean;
  identities?: Record<string, string>;
  nexusEnv?: Record<string, string>;
  /** Extra environment of single Nexus instances (1-based index), over `nexusEnv`. */
  nexusEnvOf?: Record<number, Record<string, string>>;
  keeperEnv?: Record<string, string>;
  svidTtl?: string;
  databaseUrl?: string;
  /** Nexus processes on one database (postgres only); default 1. */
  nexusCount?: number;
  /** Turn on the operations listener (probes, metrics) of every Nexus and Keeper on free loopback ports. */
  ops?: boolean;
  /**
   * `zero` (default): every hardened binary (servers, Bootstrap, the shard commands of `spike`)
   * starts with its core-dump limit already 0/0, so it skips its own prlimit child (start-up
   * time, test/helpers/core-limit.ts). `inherit`: they start with the test runner's limit and
   * lower it themselves (the ENV-08 tests of that path).
   */
  coreLimit?: 'zero' | 'inherit';
  /**
   * The package whose `bin/` the binaries are started from: this checkout (default), or an
   * installed copy (`<project>/node_modules/spike-ts`, the tarball install test).
   */
  binRoot?: string;
}

/** Backends the backend-parameterised e2e suites run against. */
export type E2eBackend = 'sqlite' | 'postgres';

/**
 * `['sqlite', 'postgres']`, or the comma-separated subset in `SPIKE_E2E_BACKENDS` (e.g.
 * `SPIKE_E2E_BACKENDS=sqlite` for a quick local run). An unknown name throws.
 */
export function e2eBackends(env: NodeJS.ProcessEnv = process.env): E2eBackend[] {
  const raw = env['SPIKE_E2E_BACKENDS'];
  if (raw === undefined || raw.trim() === '') return ['sqlite', 'postgres'];
  const out: E2eBackend[] = [];
  for (const b of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (b !== 'sqlite' && b !== 'postgres') throw new Error(`SPIKE_E2E_BACKENDS: unknown backend ${JSON.stringify(b)}`);
    if (!out.includes(b)) out.push(b);
  }
  return out;
}

export const TD = 'spike.ist';

/**
 * Nexus settings for a file that keeps a Keeper down on purpose: the start-up rollback check
 * waits 0.5 s (not 3 s) for a silent Keeper before deciding on the threshold that answered, and
 * a sharing move's 6 attempts per Keeper back off from 50 ms to at most 400 ms (not 250 ms to
 * 4 s), so a move fails on a down Keeper in about a second. The same decisions, sooner.
 */
export const KEEPER_DOWN_TIMERS: Readonly<Record<string, string>> = {
  SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW: '500ms',
  SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL: '50ms',
  SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL: '400ms',
};

/** The identities every stack's agent serves (name → SPIFFE ID), before `StackOptions.identities`. */
export const BUILTIN_IDENTITIES: Readonly<Record<string, string>> = {
  nexus: `spiffe://${TD}/spike/nexus`,
  bootstrap: `spiffe://${TD}/spike/bootstrap`,
  pilot: `spiffe://${TD}/spike/pilot/role/superuser`,
  recover: `spiffe://${TD}/spike/pilot/role/recover`,
  restore: `spiffe://${TD}/spike/pilot/role/restore`,
  lite: `spiffe://${TD}/spike/workload/role/lite`,
};
