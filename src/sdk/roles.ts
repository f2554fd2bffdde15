/**
 * SPIKE's identity recognisers as the client side needs them: the server check (`isNexus`)
 * and Pilot's self checks (`isPilotOperator`, `isPilotRecover`, `isPilotRestore`), over
 * SPIFFE ID strings, plus the role base IDs for messages.
 *
 * The rule itself (trust-root lists from `SPIKE_TRUST_ROOT_*`, "exact or prefix + '/'",
 * empty entries rejected up front — A9) lives in `src/protocol/roles.ts`; this module only
 * adapts it to strings and to the SDK's errors. A string that is not a valid SPIFFE ID
 * matches no role.
 */
import { DEFAULT_TRUST_ROOT, loadTrustRoots, recognisers, spikeIds, TrustRootConfigError, type Recognisers } from '../protocol/curve-free.js';
import { SpiffeId } from '../spiffe/index.js';
import { SdkUsageError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A predicate over a SPIFFE ID string. */
export type IdPredicate = (spiffeId: string) => boolean;

export interface ClientRoles {
  isNexus: IdPredicate;
  isPilotOperator: IdPredicate;
  isPilotRecover: IdPredicate;
  isPilotRestore: IdPredicate;
  /** Base IDs (first Pilot trust root), for messages ("this command needs …"). */
  pilotOperatorId: string;
  pilotRecoverId: string;
  pilotRestoreId: string;
}

function lift(pred: (id: SpiffeId) => boolean): IdPredicate {
  return (s) => {
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(s);
    } catch {
      return false;
    }
    return pred(id);
  };
}

/** The recognisers over the `SPIKE_TRUST_ROOT_*` variables of `env`; a bad list → `SdkUsageError`. */
export function recognisersFromEnv(env: Env): Recognisers {
  try {
    return recognisers(loadTrustRoots(env));
  } catch (e) {
    if (e instanceof TrustRootConfigError) throw new SdkUsageError('sdk_bad_argument', e.message);
    throw e;
  }
}

/** Recognisers from `SPIKE_TRUST_ROOT_NEXUS` / `SPIKE_TRUST_ROOT_PILOT`; a bad list → `SdkUsageError`. */
export function clientRoles(env: Env): ClientRoles {
  const r = recognisersFromEnv(env);
  const ids = spikeIds(r.roots.pilot[0] ?? DEFAULT_TRUST_ROOT);
  return {
    isNexus: lift((id) => r.isNexus(id)),
    isPilotOperator: lift((id) => r.isPilotOperator(id)),
    isPilotRecover: lift((id) => r.isPilotRecover(id)),
    isPilotRestore: lift((id) => r.isPilotRestore(id)),
    pilotOperatorId: ids.pilotSuperuser.toString(),
    pilotRecoverId: ids.pilotRecover.toString(),
    pilotRestoreId: ids.pilotRestore.toString(),
  };
}
