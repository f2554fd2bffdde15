/**
 * SPIKE's built-in identity recognisers as the client side needs them (identity.md §1–§2):
 * the server check (`isNexus`) and Pilot's self checks (`isPilotOperator`, `isPilotRecover`,
 * `isPilotRestore`).
 *
 * Matching rule: for each trust domain in the role's variable (comma-separated, trimmed,
 * default `spike.ist`), accept an ID equal to `spiffe://<td>/<base path>` or starting with
 * that plus `/`. An empty entry in a list is a configuration error (SPIKE exits at the first
 * check, gaps A9); here it throws `SdkUsageError` when the recogniser is built.
 *
 * NOTE for de-duplication: `src/api/identities.ts` implements the same recognisers for the
 * server; once it exists this module can delegate to it.
 */
import { SdkUsageError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export const DEFAULT_TRUST_ROOT = 'spike.ist';

const TD_RE = /^[a-z0-9._-]{1,255}$/;

/** Parses a trust-root list variable (identity.md §2). */
export function trustRoots(env: Env, variable: string): string[] {
  const raw = env[variable];
  if (raw === undefined || raw.trim() === '') return [DEFAULT_TRUST_ROOT];
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const td = part.trim();
    if (!TD_RE.test(td)) throw new SdkUsageError('sdk_bad_argument', `${variable} holds an empty or invalid trust domain`);
    out.push(td);
  }
  return out;
}

/** A predicate over a SPIFFE ID string. */
export type IdPredicate = (spiffeId: string) => boolean;

function recogniser(tds: string[], basePath: string): IdPredicate {
  const bases = tds.map((td) => `spiffe://${td}/${basePath}`);
  return (id) => bases.some((b) => id === b || id.startsWith(`${b}/`));
}

export interface ClientRoles {
  isNexus: IdPredicate;
  isPilotOperator: IdPredicate;
  isPilotRecover: IdPredicate;
  isPilotRestore: IdPredicate;
  /** Base IDs, for messages ("this command needs …"). */
  pilotOperatorId: string;
  pilotRecoverId: string;
  pilotRestoreId: string;
}

export function clientRoles(env: Env): ClientRoles {
  const nexus = trustRoots(env, 'SPIKE_TRUST_ROOT_NEXUS');
  const pilot = trustRoots(env, 'SPIKE_TRUST_ROOT_PILOT');
  const first = pilot[0] ?? DEFAULT_TRUST_ROOT;
  return {
    isNexus: recogniser(nexus, 'spike/nexus'),
    isPilotOperator: recogniser(pilot, 'spike/pilot/role/superuser'),
    isPilotRecover: recogniser(pilot, 'spike/pilot/role/recover'),
    isPilotRestore: recogniser(pilot, 'spike/pilot/role/restore'),
    pilotOperatorId: `spiffe://${first}/spike/pilot/role/superuser`,
    pilotRecoverId: `spiffe://${first}/spike/pilot/role/recover`,
    pilotRestoreId: `spiffe://${first}/spike/pilot/role/restore`,
  };
}
