/**
 * Nexus's per-route authorisation (D3) as one table: {@link ROUTE_RULES} names, for
 * every guarded route, the rule that decides it. The authorizer's checks (`canPutSecret`, …)
 * and the route guards ({@link nexusGuards}) are derived from that table, never written out
 * per route.
 *
 * Rules:
 * - `policy` (secrets, policies, cipher): a Pilot superuser is allowed; a Lite workload is
 *   denied (cipher: allowed); anyone else needs a policy granting `perm` (or `super`) on the
 *   request body's path (`on: 'path'`), on a SPIKE gate path ({@link GATE_PATHS}), or on any
 *   path (`on: 'anywhere'`).
 * - `role` (recover, restore, bootstrap verify, rotate-root-key: Pilot superuser): that fixed role only, never policies (POL-16:
 *   even a `.*`/`.*` super policy cannot reach them).
 *
 * Every guard also has an identity-only pre-check, run before the body is read (src/http/guards.ts):
 * for an `on: 'path'` rule it is the same rule with the permission granted on any path; for
 * every other rule it is the whole check.
 */
import { type Guard, guardBody, guardIdentity } from '../http/index.js';
import type {
  PolicyByIdRequest,
  PolicyListRequest,
  PolicyPutRequest,
  Recognisers,
  SecretGetRequest,
  SecretPutRequest,
  SecretVersionsRequest,
} from '../protocol/index.js';
import type { SpiffeId } from '../spiffe/index.js';
import { DecisionPacer, type Permission, type PolicyEngine } from './policy/index.js';

/** SPIKE's gate paths: never secret paths, reached only by a policy that fully matches them. */
export const GATE_PATHS = {
  acl: 'spike/system/acl',
  secret: 'spike/system/secret',
  cipher: 'spike/system/cipher/exec',
} as const;

interface PolicyRule {
  readonly kind: 'policy';
  readonly perm: Permission;
  /** Where the permission must be granted: the body's path, a gate path, or any path. */
  readonly on: 'path' | 'anywhere' | keyof typeof GATE_PATHS;
  /** What a Lite workload gets (it never goes through policies). */
  readonly lite: 'allow' | 'deny';
}

interface RoleRule {
  readonly kind: 'role';
  readonly role: 'isPilotRecover' | 'isPilotRestore' | 'isBootstrap' | 'isPilotOperator';
}

type Rule = PolicyRule | RoleRule;

const onPath = (perm: Permission): PolicyRule & { readonly on: 'path' } => ({ kind: 'policy', perm, on: 'path', lite: 'deny' });
const policy = (perm: Permission, on: PolicyRule['on'], lite: PolicyRule['lite'] = 'deny'): PolicyRule => ({ kind: 'policy', perm, on, lite });
const role = (name: RoleRule['role']): RoleRule => ({ kind: 'role', role: name });

declare const BODY: unique symbol;
/** Type-only marker of a route's request body type (the guard's `B`); an empty object at run time. */
interface BodyType<B> {
  readonly [BODY]?: B;
}
const body = <B>(): BodyType<B> => ({});

/**
 * THE table: guard key → guard name (logs, route listings), derived check method, request
 * body type, rule. Secret list (POL-21): SPIKE wants `list` on `spike/system/secret`; we accept
 * `list` granted anywhere (which includes that gate grant) and filter what is listed with
 * {@link NexusAuthorizer.canSeeSecretPath}. `destroy` (additive) wants what delete wants.
 */
const ROUTE_RULES = {
  secretPut: { name: 'secret.put', check: 'canPutSecret', body: body<SecretPutRequest>(), rule: onPath('write') },
  secretGet: { name: 'secret.get', check: 'canGetSecret', body: body<SecretGetRequest>(), rule: onPath('read') },
  secretDelete: { name: 'secret.delete', check: 'canDeleteSecret', body: body<SecretVersionsRequest>(), rule: onPath('write') },
  secretUndelete: { name: 'secret.undelete', check: 'canUndeleteSecret', body: body<SecretVersionsRequest>(), rule: onPath('write') },
  secretDestroy: { name: 'secret.destroy', check: 'canDestroySecret', body: body<SecretVersionsRequest>(), rule: onPath('write') },
  secretList: { name: 'secret.list', check: 'canListSecrets', body: body<unknown>(), rule: policy('list', 'anywhere') },
  secretMetadata: { name: 'secret.metadata', check: 'canReadSecretMetadata', body: body<SecretGetRequest>(), rule: onPath('read') },
  policyPut: { name: 'policy.put', check: 'canPutPolicy', body: body<PolicyPutRequest>(), rule: policy('write', 'acl') },
  policyGet: { name: 'policy.get', check: 'canGetPolicy', body: body<PolicyByIdRequest>(), rule: policy('read', 'acl') },
  policyList: { name: 'policy.list', check: 'canListPolicies', body: body<PolicyListRequest>(), rule: policy('list', 'acl') },
  policyDelete: { name: 'policy.delete', check: 'canDeletePolicy', body: body<PolicyByIdRequest>(), rule: policy('write', 'acl') },
  cipher: { name: 'cipher', check: 'canUseCipher', body: body<unknown>(), rule: policy('execute', 'cipher', 'allow') },
  recover: { name: 'operator.recover', check: 'canRecover', body: body<unknown>(), rule: role('isPilotRecover') },
  restore: { name: 'operator.restore', check: 'canRestore', body: body<unknown>(), rule: role('isPilotRestore') },
  bootstrapVerify: { name: 'bootstrap.verify', check: 'canVerifyBootstrap', body: body<unknown>(), rule: role('isBootstrap') },
  rotateRootKey: { name: 'operator.rotate_root_key', check: 'canRotateRootKey', body: body<unknown>(), rule: role('isPilotOperator') },
} as const satisfies Record<string, { name: string; check: `can${string}`; body: BodyType<unknown>; rule: Rule }>;

type Rows = typeof ROUTE_RULES;
/** A guarded Nexus route, by its guard key. */
type NexusRoute = keyof Rows;
const NEXUS_ROUTES = Object.keys(ROUTE_RULES) as NexusRoute[];

type BodyOf<T> = T extends BodyType<infer B> ? B : never;
type CheckOf<R> = R extends { readonly on: 'path' } ? (peer: SpiffeId, path: string) => boolean : (peer: SpiffeId) => boolean;

/** One check method per table row, e.g. `canPutSecret(peer, path)`, `canPutPolicy(peer)`. */
type DerivedChecks = { readonly [K in NexusRoute as Rows[K]['check']]: CheckOf<Rows[K]['rule']> };

/** The guards for every Nexus route, bound to one authorizer. */
export type NexusGuards = { readonly [K in NexusRoute]: Guard<BodyOf<Rows[K]['body']>> };

const isPathRule = (rule: Rule): rule is PolicyRule & { readonly on: 'path' } => rule.kind === 'policy' && rule.on === 'path';

/** Marks the pre-check: an `on: 'path'` rule is asked about any path. */
const ANY_PATH = Symbol('any path');

/** The derived checks are defined on the prototype below; this merges their types into the class. */
export interface NexusAuthorizer extends DerivedChecks {}

/** Decides Nexus routes from {@link ROUTE_RULES} over one policy engine (see module doc). */
export class NexusAuthorizer {
  /**
   * `unavailable`: when the engine cannot be trusted (its freshness check failed, so it was
   * emptied), the error to throw instead of deciding a policy-based request — a 503 with the
   * cause, never a 401 that would read as "your policies do not allow this". Still fails
   * closed: nothing is allowed through policies meanwhile.
   */
  constructor(
    readonly engine: PolicyEngine,
    readonly ids: Recognisers,
    readonly unavailable: () => Error | undefined = () => undefined,
  ) {}

  /** The full decision on `route` (`path`: the request body's path; required by `on: 'path'` rules). */
  allows(route: NexusRoute, peer: SpiffeId, path?: string): boolean {
    return this.#decide(ROUTE_RULES[route].rule, peer, path ?? null);
  }

  /** The identity-only pre-check of `route`: true whenever {@link allows} could be true for some body. */
  admits(route: NexusRoute, peer: SpiffeId): boolean {
    return this.#decide(ROUTE_RULES[route].rule, peer, ANY_PATH);
  }

  /**
   * Whether `secret list` shows a path to the caller (A5): Pilot, or `list` or `read` on that
   * path. `by` asks for one of the two decisions only (a listing may make them in different
   * turns of the event loop: policy/pacer.ts).
   */
  canSeeSecretPath(peer: SpiffeId, path: string, by: 'list' | 'read' | 'either' = 'either'): boolean {
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return false;
    const unavailable = this.unavailable();
    if (unavailable !== undefined) throw unavailable;
    if (by !== 'either') return this.engine.allows(peer, path, by);
    return this.engine.allows(peer, path, 'list') || this.engine.allows(peer, path, 'read');
  }

  #decide(rule: Rule, peer: SpiffeId, path: string | null | typeof ANY_PATH): boolean {
    if (rule.kind === 'role') return this.ids[rule.role](peer);
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return rule.lite === 'allow';
    const unavailable = this.unavailable();
    if (unavailable !== undefined) throw unavailable;
    switch (rule.on) {
      case 'anywhere':
        return this.engine.grantsAnywhere(peer, rule.perm);
      case 'path':
        if (path === ANY_PATH) return this.engine.grantsAnywhere(peer, rule.perm);
        return path !== null && this.engine.allows(peer, path, rule.perm);
      default:
        return this.engine.allows(peer, GATE_PATHS[rule.on], rule.perm);
    }
  }
}

for (const route of NEXUS_ROUTES) {
  const { check, rule } = ROUTE_RULES[route];
  const method = isPathRule(rule)
    ? function (this: NexusAuthorizer, peer: SpiffeId, path: string): boolean {
        return this.allows(route, peer, path);
      }
    : function (this: NexusAuthorizer, peer: SpiffeId): boolean {
        return this.allows(route, peer);
      };
  Object.defineProperty(NexusAuthorizer.prototype, check, { value: method, writable: false, enumerable: false, configurable: false });
}

/** Every Nexus route's guard, derived from {@link ROUTE_RULES} and bound to `authz`. */
export function nexusGuards(authz: NexusAuthorizer): NexusGuards {
  // Guard<never> holds every guard (a guard of any body type is one); the table types each key.
  const guards: Partial<Record<NexusRoute, Guard<never>>> = {};
  for (const route of NEXUS_ROUTES) {
    const { name, rule } = ROUTE_RULES[route];
    guards[route] = isPathRule(rule)
      ? guardBody<{ path: string }>(name, {
          admits: (peer) => authz.admits(route, peer),
          allow: (peer, request) => authz.allows(route, peer, request.path),
        })
      : guardIdentity(name, (peer) => authz.allows(route, peer));
  }
  return guards as NexusGuards;
}

/**
 * The pacer of costly policy decisions for these rules (policy/pacer.ts, FI-13): the operator
 * and Lite workloads never run policy patterns, and a rule on a fixed path decides on a gate path.
 */
export function nexusPacer(engine: PolicyEngine, ids: Recognisers): DecisionPacer {
  return new DecisionPacer(engine, {
    exempt: (peer) => ids.isPilotOperator(peer) || ids.isLiteWorkload(peer),
    gatePaths: Object.values(GATE_PATHS),
  });
}
