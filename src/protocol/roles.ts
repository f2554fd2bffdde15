/**
 * SPIKE's built-in identities (role IDs, trust roots) and their recognisers, used by the
 * servers' guards and by the SDK's server and self checks.
 *
 * Each role is `spiffe://<trust root>/<fixed path>`; a peer has the role when its trust domain
 * is one of the role's trust roots and its path is exactly the role path **or** starts with
 * the role path + `/` (so `…/spike/nexus/instance-1` is a Nexus, `…/role/superuser/alice` is a
 * superuser, but `…/spike/nexusX` and `…/role/superuser-x` are not).
 *
 * Trust roots come from `SPIKE_TRUST_ROOT_NEXUS`, `_KEEPER`, `_BOOTSTRAP`, `_PILOT`,
 * `_LITE_WORKLOAD`: comma lists, entries trimmed, unset or empty → `spike.ist`. They are read
 * once by {@link loadTrustRoots} from an explicit env object; an empty or invalid entry is a
 * {@link TrustRootConfigError} at start-up (SPIKE crashes inside a request handler: A9).
 * `SPIKE_TRUST_ROOT` is not a fallback (it has no effect in SPIKE).
 */
import { SpikeError } from '../lib/index.js';
import { SpiffeId, TrustDomain } from '../spiffe/index.js';

export const DEFAULT_TRUST_ROOT = 'spike.ist';

/** Role paths (without the trust domain). */
export const ROLE_PATHS = {
  nexus: '/spike/nexus',
  keeper: '/spike/keeper',
  bootstrap: '/spike/bootstrap',
  pilotSuperuser: '/spike/pilot/role/superuser',
  pilotRecover: '/spike/pilot/role/recover',
  pilotRestore: '/spike/pilot/role/restore',
  liteWorkload: '/spike/workload/role/lite',
} as const;
export type Role = keyof typeof ROLE_PATHS;

export const TRUST_ROOT_ENV = {
  nexus: 'SPIKE_TRUST_ROOT_NEXUS',
  keeper: 'SPIKE_TRUST_ROOT_KEEPER',
  bootstrap: 'SPIKE_TRUST_ROOT_BOOTSTRAP',
  pilot: 'SPIKE_TRUST_ROOT_PILOT',
  liteWorkload: 'SPIKE_TRUST_ROOT_LITE_WORKLOAD',
} as const;

/** The trust domains each recogniser accepts. */
export interface TrustRoots {
  readonly nexus: readonly TrustDomain[];
  readonly keeper: readonly TrustDomain[];
  readonly bootstrap: readonly TrustDomain[];
  readonly pilot: readonly TrustDomain[];
  readonly liteWorkload: readonly TrustDomain[];
}

/** A trust-root variable with an empty or invalid entry. Names the variable, not the value. */
export class TrustRootConfigError extends SpikeError {
  constructor(variable: string, problem: string) {
    super('config_invalid_trust_root', `${variable}: ${problem}`);
  }
}

function parseList(variable: string, raw: string | undefined): TrustDomain[] {
  if (raw === undefined || raw.trim() === '') return [TrustDomain.parse(DEFAULT_TRUST_ROOT)];
  const out: TrustDomain[] = [];
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name === '') throw new TrustRootConfigError(variable, 'has an empty entry');
    try {
      const td = TrustDomain.parse(name);
      if (!out.some((o) => o.equals(td))) out.push(td);
    } catch {
      throw new TrustRootConfigError(variable, 'has an entry that is not a valid trust domain name');
    }
  }
  return out;
}

/** Reads and validates all five trust-root variables from `env` (e.g. `process.env`). */
export function loadTrustRoots(env: Readonly<Record<string, string | undefined>>): TrustRoots {
  return Object.freeze({
    nexus: Object.freeze(parseList(TRUST_ROOT_ENV.nexus, env[TRUST_ROOT_ENV.nexus])),
    keeper: Object.freeze(parseList(TRUST_ROOT_ENV.keeper, env[TRUST_ROOT_ENV.keeper])),
    bootstrap: Object.freeze(parseList(TRUST_ROOT_ENV.bootstrap, env[TRUST_ROOT_ENV.bootstrap])),
    pilot: Object.freeze(parseList(TRUST_ROOT_ENV.pilot, env[TRUST_ROOT_ENV.pilot])),
    liteWorkload: Object.freeze(parseList(TRUST_ROOT_ENV.liteWorkload, env[TRUST_ROOT_ENV.liteWorkload])),
  });
}

/** SPIKE's "exact or prefix + '/'" rule for one role. */
export function hasRole(id: SpiffeId, tds: readonly TrustDomain[], rolePath: string): boolean {
  if (!tds.some((td) => td.equals(id.trustDomain))) return false;
  return id.path === rolePath || id.path.startsWith(rolePath + '/');
}

export const isNexus = (roots: TrustRoots, id: SpiffeId): boolean => hasRole(id, roots.nexus, ROLE_PATHS.nexus);
export const isKeeper = (roots: TrustRoots, id: SpiffeId): boolean => hasRole(id, roots.keeper, ROLE_PATHS.keeper);
export const isBootstrap = (roots: TrustRoots, id: SpiffeId): boolean => hasRole(id, roots.bootstrap, ROLE_PATHS.bootstrap);
export const isPilotOperator = (roots: TrustRoots, id: SpiffeId): boolean =>
  hasRole(id, roots.pilot, ROLE_PATHS.pilotSuperuser);
export const isPilotRecover = (roots: TrustRoots, id: SpiffeId): boolean => hasRole(id, roots.pilot, ROLE_PATHS.pilotRecover);
export const isPilotRestore = (roots: TrustRoots, id: SpiffeId): boolean => hasRole(id, roots.pilot, ROLE_PATHS.pilotRestore);
export const isLiteWorkload = (roots: TrustRoots, id: SpiffeId): boolean =>
  hasRole(id, roots.liteWorkload, ROLE_PATHS.liteWorkload);

/** The recognisers bound to one set of trust roots. */
export interface Recognisers {
  readonly roots: TrustRoots;
  isNexus(id: SpiffeId): boolean;
  isKeeper(id: SpiffeId): boolean;
  isBootstrap(id: SpiffeId): boolean;
  isPilotOperator(id: SpiffeId): boolean;
  isPilotRecover(id: SpiffeId): boolean;
  isPilotRestore(id: SpiffeId): boolean;
  isLiteWorkload(id: SpiffeId): boolean;
}

export function recognisers(roots: TrustRoots): Recognisers {
  return Object.freeze({
    roots,
    isNexus: (id: SpiffeId) => isNexus(roots, id),
    isKeeper: (id: SpiffeId) => isKeeper(roots, id),
    isBootstrap: (id: SpiffeId) => isBootstrap(roots, id),
    isPilotOperator: (id: SpiffeId) => isPilotOperator(roots, id),
    isPilotRecover: (id: SpiffeId) => isPilotRecover(roots, id),
    isPilotRestore: (id: SpiffeId) => isPilotRestore(roots, id),
    isLiteWorkload: (id: SpiffeId) => isLiteWorkload(roots, id),
  });
}

/** The base SPIFFE ID of every SPIKE role in trust domain `td` (string or parsed). */
export function spikeIds(td: TrustDomain | string): Readonly<Record<Role, SpiffeId>> {
  const t = typeof td === 'string' ? TrustDomain.parse(td) : td;
  const mk = (p: string): SpiffeId => SpiffeId.fromSegments(t, ...p.slice(1).split('/'));
  return Object.freeze({
    nexus: mk(ROLE_PATHS.nexus),
    keeper: mk(ROLE_PATHS.keeper),
    bootstrap: mk(ROLE_PATHS.bootstrap),
    pilotSuperuser: mk(ROLE_PATHS.pilotSuperuser),
    pilotRecover: mk(ROLE_PATHS.pilotRecover),
    pilotRestore: mk(ROLE_PATHS.pilotRestore),
    liteWorkload: mk(ROLE_PATHS.liteWorkload),
  });
}
