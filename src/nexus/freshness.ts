/**
 * The front of every request on a shared database (postgres, or a SQLite file that several
 * workers write): one database deadline for the whole request (postgres:
 * SPIKE_NEXUS_DB_OPERATION_TIMEOUT; SQLite: its busy timeout; lib/deadline.ts), then the
 * policy-freshness check, then the router.
 *
 * The check shares that deadline: when the database does not answer the generation read
 * before it passes, the request stops waiting (the check goes on for later requests) and
 * the policy state is marked unavailable — policy-based requests then answer 503
 * `state_not_ready` with the cause (authz.ts), never 401, and superuser requests meet the
 * same expired deadline at their first store call (503 with the cause `timeout`). A JSON
 * route's full check, made once its body arrived, checks again first
 * ({@link freshBeforeDecision}).
 */
import type { RouterHandler } from '../http/index.js';
import type { SpiffeId } from '../spiffe/index.js';
import { outsideRequest, remainingMs, runWithDeadline } from '../lib/index.js';
import { StoreError } from '../store/index.js';
import type { PolicySync } from './policy/index.js';

type Handler = (req: Parameters<RouterHandler>[0], res: Parameters<RouterHandler>[1], peer: SpiffeId | null) => Promise<void>;

/** Resolves when `p` settles or the current request's deadline passes (→ 'late'). */
function withinDeadline(p: Promise<unknown>): Promise<'done' | 'late'> {
  const left = remainingMs();
  const settled = p.then(() => 'done' as const, () => 'done' as const);
  if (left === undefined) return settled;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), Math.max(0, left));
  });
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/** The shared-database request handler: deadline, freshness check, router (see module doc). */
export function freshRequestHandler(router: RouterHandler, policies: PolicySync, operationTimeoutMs: number): Handler {
  return (req, res, peer) => runWithDeadline(operationTimeoutMs, async () => {
    // A failed check records its cause in `policies` (the engine is emptied: default deny).
    const outcome = await withinDeadline(policies.ensureFresh());
    if (outcome === 'late') {
      policies.markUnavailable(new StoreError('store_unavailable', { failure: 'timeout', outcome: 'not_applied' }));
    }
    await router(req, res, peer);
  });
}

/**
 * The router's `beforeDecision` on a shared database: the full check of a JSON route is made
 * after its body arrived (up to the body timeout later), and another process may have deleted
 * a policy meanwhile, so the generation is checked again first (a read issued now, after any
 * change answered before it), then `paced` runs. The read runs outside the request's deadline:
 * a request whose deadline its own slow body used up must not empty the engine for everyone
 * (its store calls meet that deadline anyway).
 */
export function freshBeforeDecision<P>(
  paced: (peer: P, body?: unknown) => Promise<void> | undefined, policies: PolicySync,
): (peer: P, body?: unknown) => Promise<void> | undefined {
  return (peer, body) => {
    if (body === undefined) return paced(peer); // the identity pre-check follows the request's own check
    // A failed check has emptied the engine and recorded why: the guard then answers 503 with that cause.
    return outsideRequest(() => policies.ensureFresh()).catch(() => undefined).then(() => paced(peer, body));
  };
}
