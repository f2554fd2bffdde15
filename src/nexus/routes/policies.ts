/**
 * Nexus policy routes (D1, D3; gaps B1, B4):
 *
 *   POST /v1/acl/policy                 upsert by name (`createdAt` kept, `updatedAt` = now)
 *   POST /v1/acl/policy?action=get      read by name (request field `id`); missing → 404 (SPIKE: 500, B1)
 *   POST /v1/acl/policy?action=list     `{policies:[{id:"",name}]}`, exact-string filters
 *   POST /v1/acl/policy?action=delete   delete by name; missing → 404 (SPIKE: 500, B1)
 *
 * A put is validated and compiled by the policy engine first (SPIKE's grammars; patterns that
 * re2js cannot compile → 400, not SPIKE's 500: D3/B4; the mapping is in policy-errors.ts).
 * After every successful write the engine is brought up to date **before** the answer goes
 * out, so the next request — from any caller — sees the change (POL-17: no stale allow after
 * a delete returns): the change is applied to the engine alone when nothing else changed
 * since (one generation read, O(1) in the policy count), else the engine is reloaded.
 * Not served in `lite` mode (SPIKE's 400 for those paths).
 */
import { ApiError, ERR, notFound, ACTIONS, ERROR_SHAPES, PATHS, PolicyByIdRequest, PolicyListRequest, PolicyPutRequest, policyGetResponse, policyListResponse, type PolicyGetResponse, type PolicyListResponse } from '../../protocol/index.js';
import { type HandlerContext, type Route, defineRoute } from '../../http/index.js';
import type { Logger } from '../../lib/index.js';
import type { NexusContext } from '../context.js';
import type { PolicyChange } from '../policy/index.js';
import { viaPolicy } from './policy-errors.js';
import { viaStore } from './store-errors.js';

export function policyRoutes(ctx: NexusContext): Route[] {
  if (ctx.store.kind === 'lite') return [];
  const { store, guards, engine } = ctx;

  /** Reloads the engine; one retry, then 500 (the write itself is durable). */
  const reload = async (log: Logger): Promise<void> => {
    try {
      await ctx.policies.reload();
    } catch {
      try {
        await ctx.policies.reload();
      } catch (e) {
        log.error({ err: (e as { code?: unknown }).code ?? 'error' }, 'policy reload after a write failed');
        // Fail closed: a deleted policy must not keep granting access while the engine
        // cannot be refreshed. Deny every policy-based request until a reload succeeds.
        ctx.policies.failClosed(0, e);
        throw new ApiError(ERR.internal, 'internal error', { reason: 'policy_reload_failed', cause: e });
      }
    }
  };

  /**
   * After a committed write: apply `change` alone when that provably equals a reload (the
   * store's generation moved by exactly one from `base`, read before the write), else reload.
   */
  const refresh = async (log: Logger, change: PolicyChange, base: number | null): Promise<void> => {
    const generation = base === null ? undefined : await store.policyGeneration().catch(() => undefined);
    if (generation !== undefined && engine.apply(change, base, generation)) return;
    await reload(log);
  };

  /**
   * Policy writes of this process run one at a time (base read → store write → refresh), so
   * that each moves the generation by exactly one and is applied alone. Concurrent writes
   * used to find the generation moved by several, and each fell back to a full reload of
   * every policy: 16 writers creating 1,000 policies took 19 s, 5,000 several minutes (FI-11).
   */
  let tail: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };

  const put = defineRoute({
    path: PATHS.policy,
    name: 'policy.put',
    body: PolicyPutRequest,
    guard: guards.policyPut,
    errorShape: ERROR_SHAPES.plain,
    handle: async ({ body, log }: HandlerContext<PolicyPutRequest>) => {
      const p = viaPolicy(() => engine.compileRequest(body));
      await oneAtATime(async () => {
        const base = engine.changeBase();
        const policy = await viaStore(log, () =>
          store.putPolicy({
            name: p.name,
            spiffeIdPattern: p.spiffeIdPattern,
            pathPattern: p.pathPattern,
            permissions: [...p.permissions],
          }),
        );
        await refresh(log, { kind: 'put', policy }, base);
      });
      ctx.audit.event('policy.put');
      return {};
    },
  });

  const get = defineRoute({
    path: PATHS.policy,
    action: ACTIONS.get,
    name: 'policy.get',
    body: PolicyByIdRequest,
    guard: guards.policyGet,
    errorShape: ERROR_SHAPES.policyGet,
    handle: async ({ body, log }: HandlerContext<PolicyByIdRequest>): Promise<PolicyGetResponse> => {
      const p = await viaStore(log, () => store.getPolicy(body.id));
      if (p === null) throw notFound();
      return policyGetResponse(p);
    },
  });

  const list = defineRoute({
    path: PATHS.policy,
    action: ACTIONS.list,
    name: 'policy.list',
    body: PolicyListRequest,
    guard: guards.policyList,
    errorShape: ERROR_SHAPES.policyList,
    handle: async ({ body, log }: HandlerContext<PolicyListRequest>): Promise<PolicyListResponse> => {
      const all = await viaStore(log, () => store.listPolicies());
      // Exact string equality, never compiled as a regex (POL-13); spiffeidPattern wins (SPIKE's rule).
      const selected =
        body.spiffeidPattern !== ''
          ? all.filter((p) => p.spiffeIdPattern === body.spiffeidPattern)
          : body.pathPattern !== ''
            ? all.filter((p) => p.pathPattern === body.pathPattern)
            : all;
      return policyListResponse(selected.map((p) => p.name));
    },
  });

  const del = defineRoute({
    path: PATHS.policy,
    action: ACTIONS.delete,
    name: 'policy.delete',
    body: PolicyByIdRequest,
    guard: guards.policyDelete,
    errorShape: ERROR_SHAPES.plain,
    handle: async ({ body, log }: HandlerContext<PolicyByIdRequest>) => {
      await oneAtATime(async () => {
        const base = engine.changeBase();
        const existed = await viaStore(log, () => store.deletePolicy(body.id));
        if (!existed) throw notFound();
        await refresh(log, { kind: 'delete', name: body.id }, base);
      });
      ctx.audit.event('policy.delete');
      return {};
    },
  });

  return [put, get, list, del];
}
