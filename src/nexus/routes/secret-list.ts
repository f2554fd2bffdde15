/**
 * `POST /v1/store/secrets?action=list`: the paths the caller may see (not every path: A5),
 * sorted in code-unit order, served from the store's in-memory path index (issue 18), so
 * the cost is what is read from the index, never a decryption of the whole store.
 *
 * SPIKE's request `{}` still answers every visible path in one response. Additive request
 * fields: `prefix` (only paths starting with it), `limit` (a page of at most that many
 * keys) and `after` (only paths sorting after it). When a page is cut short, the answer
 * carries `next` = its last key; sending it back as `after` gives the following page.
 * A cursor is a path the caller was shown, so it reveals nothing new; `next` is set only
 * when a visible path follows, so it never hints at a path the caller may not see.
 *
 * Authorisation is unchanged: the guard decides who may list at all, the operator sees
 * every path, anyone else the paths a policy lets them list or read (canSeeSecretPath),
 * filtered before `limit` is counted. Nothing here logs a path, prefix or cursor.
 *
 * Those decisions are two per path read, each bounded (FI-13), but a listing reads every path
 * of its range, also the ones it hides: their sum is bounded too. A listing that decides per
 * path and has not finished `SPIKE_NEXUS_LIST_POLICY_BUDGET` (5 s) after it started is
 * answered 400 "narrow it with a prefix" (not a page cut short: a cursor may only name a path
 * the caller was shown). The scan gives other requests a turn between its slices, one slice
 * of all listings per turn of the event loop, callers served in rotation (path-index.ts,
 * lib/yield.ts), so many costly listings at once slow each other, never the rest; counting from the start (not only the time spent
 * deciding) ends each of them, and its answer comes, well within a client's answer timeout.
 */
import { ACTIONS, ERROR_SHAPES, PATHS, SecretListRequest, type SecretListResponse } from '../../protocol/index.js';
import { type HandlerContext, type Route, defineRoute } from '../../http/index.js';
import { badRequest } from '../../protocol/index.js';
import type { SecretPathQuery } from '../../store/index.js';
import type { NexusContext } from '../context.js';
import { viaStore } from './store-errors.js';

export function secretListRoute(ctx: NexusContext): Route {
  const { store, guards, authz } = ctx;
  return defineRoute({
    path: PATHS.secrets,
    action: ACTIONS.list,
    name: 'secret.list',
    body: SecretListRequest,
    guard: guards.secretList,
    errorShape: ERROR_SHAPES.secretList,
    handle: async ({ body, peer, log }: HandlerContext<SecretListRequest>): Promise<SecretListResponse> => {
      const q: SecretPathQuery = { prefix: body.prefix };
      if (body.limit !== undefined) q.limit = body.limit;
      if (body.after !== undefined) q.after = body.after;
      const budgetMs = ctx.cfg.listPolicyBudgetMs;
      const started = performance.now();
      let spentMs = 0;
      let over = false;
      if (!ctx.ids.isPilotOperator(peer)) {
        q.stop = () => (over ||= performance.now() - started > budgetMs); // answered 400 below
        q.owner = peer.toString(); // turns are shared fairly by caller, not by listing
        // Each decision must fit in what the turn has left of its pattern work (policy/pacer.ts):
        // the slice ends before a path whose `list` decision does not fit, and a path whose
        // `list` decision denied gets its `read` decision a turn later when that one does not.
        let readNext: string | undefined;
        q.mayDecide = (p) => ctx.pacer.fits(peer, p, readNext === p ? 'read' : 'list');
        q.turnOfItsOwn = () => ctx.pacer.freshTurn(peer);
        q.accept = (p) => {
          const t0 = performance.now();
          let ok: boolean | undefined;
          if (readNext === p) ok = authz.canSeeSecretPath(peer, p, 'read');
          else ok = authz.canSeeSecretPath(peer, p, 'list') || (ctx.pacer.fits(peer, p, 'read') ? authz.canSeeSecretPath(peer, p, 'read') : undefined);
          readNext = ok === undefined ? p : undefined;
          spentMs += performance.now() - t0;
          return ok;
        };
      }
      // Backend failures are errors here, not an empty list (gaps B12).
      const page = await viaStore(log, () => store.listSecretPathPage(q));
      if (over) {
        log.warn({ reason: 'list_too_costly', spentMs: Math.round(spentMs), elapsedMs: Math.round(performance.now() - started) }, 'secret list stopped: its policy decisions took too long');
        throw badRequest('list_too_costly', 'this listing needs more policy work than one request may do; narrow it with a prefix');
      }
      const last = page.paths[page.paths.length - 1];
      return page.more && last !== undefined ? { keys: page.paths, next: last } : { keys: page.paths };
    },
  });
}
