/**
 * The policy engine and Nexus's per-route authorisation (policy.md, api.md §4, decision D3).
 *
 * Policy model: `name`, `spiffeIdPattern`, `pathPattern`, `permissions` ⊆ {read, write, list,
 * execute, super}; `super` satisfies any wanted permission; permissions are never combined
 * across policies; no policy → deny. There are no deny rules (SPIKE has none, and adding them
 * is not needed for any route; POL-23 does not apply).
 *
 * Matching (D3): both patterns are RE2 on re2js (linear time, never V8's backtracking engine)
 * and are matched as a **full match** (`RE2JS#matches`, the same as `^(?:p)$`), not SPIKE's
 * substring search. Consequences:
 * - SPIKE's reserved-path special rules collapse into the ordinary check: a policy reaches the
 *   gate path `spike/system/acl` only if its path pattern fully matches that string (POL-02:
 *   `acl`, `system`, `spike` reach nothing but the secret of that literal name).
 * - SPIKE's "precise identity pattern" requirement for reserved paths (anchored `^…$` or a
 *   deliberate catch-all) holds for every pattern by construction: full match anchors both
 *   ends, and the anchors are structural, not the textual first/last character test SPIKE
 *   uses (POL-04: `^a|b$` means exactly `a` or `b`).
 *
 * Cost model (POL-24, G12): the engine is pure and fed the policy list plus a generation number
 * ({@link PolicyEngine.load}); it never touches the store. Patterns are compiled once per
 * distinct pattern string (shared across policy versions and loads) and lazily on first use;
 * patterns that are plain literals (after optional `^`/`$` and `\`-escaped punctuation) are
 * compared as strings with no regex at all. Per caller SPIFFE ID the engine caches the subset
 * of policies whose identity pattern matches (bounded LRU); literal identity patterns are found
 * through a hash index, and a regex identity pattern is compiled and run only for callers that
 * start with its literal prefix ({@link requiredPrefixOf}), so a caller with no policies costs
 * O(1) (warm) or O(regex patterns) cheap prefix tests (cold) however many policies exist.
 * Every load clears the caller cache, so the very next request sees the change (no stale
 * allow after a delete returns: POL-17).
 */
import { RE2JS } from 're2js';
import type { Logger } from '../lib/log.js';
import type { SpiffeId } from '../spiffe/id.js';
import { REASON, badRequest } from '../api/errors.js';
import { type Guard, guardBody, guardIdentity } from '../api/guards.js';
import {
  type Permission,
  PERMISSIONS,
  type PolicyByIdRequest,
  type PolicyListRequest,
  type PolicyPutRequest,
  type Recognisers,
  type SecretGetRequest,
  type SecretPutRequest,
  type SecretVersionsRequest,
  validatePathPattern,
  validatePermissions,
  validatePolicyName,
  validateSpiffeIdPattern,
} from '../protocol/index.js';

export type { Permission };

/** SPIKE's gate paths (policy.md §4). */
export const GATE_PATHS = {
  acl: 'spike/system/acl',
  secret: 'spike/system/secret',
  cipher: 'spike/system/cipher/exec',
} as const;

/** A policy as stored (field names as in `src/store/types.ts`). */
export interface PolicyLike {
  readonly name: string;
  readonly spiffeIdPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly string[];
}

/** A validated policy ready to be stored. */
export interface CompiledPolicy {
  readonly name: string;
  readonly spiffeIdPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly Permission[];
}

const BIT: Readonly<Record<Permission, number>> = { read: 1, write: 2, list: 4, execute: 8, super: 16 };

function permBits(perms: readonly string[]): number {
  let b = 0;
  for (const p of perms) if ((PERMISSIONS as readonly string[]).includes(p)) b |= BIT[p as Permission];
  return b;
}

// ---------------------------------------------------------------------------------------------
// Patterns

function isAsciiPunct(c: number): boolean {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/**
 * If `p` (as a full-match RE2 pattern) matches exactly one string, return it; else null.
 * Recognised: an optional leading `^`, an optional trailing `$`, and in between characters that
 * are not RE2 metacharacters or are `\`-escaped ASCII punctuation.
 */
export function literalOf(p: string): string | null {
  let i = 0;
  let end = p.length;
  if (p.startsWith('^')) i = 1;
  // A trailing `$` is an anchor only if it is not escaped (count the backslashes before it).
  if (end > i && p.charCodeAt(end - 1) === 0x24) {
    let bs = 0;
    for (let k = end - 2; k >= i && p.charCodeAt(k) === 0x5c; k--) bs++;
    if (bs % 2 === 0) end--;
  }
  let out = '';
  for (; i < end; i++) {
    const c = p[i] as string;
    if (c === '\\') {
      const n = p[i + 1];
      if (n === undefined || i + 1 >= end) return null;
      if (!isAsciiPunct(n.charCodeAt(0))) return null; // only escaped ASCII punctuation is literal
      out += n;
      i++;
      continue;
    }
    if ('.[]{}()*+?|^$'.includes(c)) return null;
    const code = c.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) return null; // keep the fast path ASCII-only
    out += c;
  }
  return out;
}

/**
 * A string that every full match of `p` must start with ('' when none can be derived). Used to
 * skip identity patterns that cannot match a caller without compiling or running them.
 * Conservative: stops at the first metacharacter, drops a literal that a quantifier follows,
 * and gives '' when the pattern has a top-level alternation.
 */
export function requiredPrefixOf(p: string): string {
  // A top-level `|` anywhere → no common prefix.
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return '';
  }
  const quantified = (q: string | undefined): boolean => q === '*' || q === '+' || q === '?' || q === '{';
  let out = '';
  for (let i = p.startsWith('^') ? 1 : 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '\\') {
      const n = p[i + 1];
      if (n === undefined || !isAsciiPunct(n.charCodeAt(0)) || quantified(p[i + 2])) break;
      out += n;
      i++;
      continue;
    }
    if ('.[]{}()*+?|^$'.includes(c)) break;
    const code = c.charCodeAt(0);
    if (code < 0x20 || code > 0x7e || quantified(p[i + 1])) break;
    out += c;
  }
  return out;
}

/** Something that decides whether a whole string matches a pattern. */
interface Matcher {
  readonly literal: string | null;
  /** Every match starts with this ('' = unknown). */
  readonly prefix: string;
  matches(s: string): boolean;
}

/** Compiled-pattern cache shared across policy versions: one compile per distinct pattern. */
class PatternCache {
  private readonly map = new Map<string, Matcher>();
  constructor(private readonly onCompileError: () => void) {}

  get(pattern: string): Matcher {
    let m = this.map.get(pattern);
    if (m === undefined) {
      m = this.make(pattern);
      this.map.set(pattern, m);
    }
    return m;
  }

  /** Keep only the given patterns (called on load, so memory follows the live policy set). */
  retain(live: ReadonlySet<string>): void {
    for (const k of this.map.keys()) if (!live.has(k)) this.map.delete(k);
  }

  get size(): number {
    return this.map.size;
  }

  private make(pattern: string): Matcher {
    const lit = literalOf(pattern);
    if (lit !== null) return { literal: lit, prefix: lit, matches: (s) => s === lit };
    let re: RE2JS | null | undefined; // undefined = not compiled yet; null = does not compile
    const onErr = this.onCompileError;
    return {
      literal: null,
      prefix: requiredPrefixOf(pattern),
      matches(s: string): boolean {
        if (re === undefined) {
          try {
            re = RE2JS.compile(pattern);
          } catch {
            re = null;
            onErr();
          }
        }
        return re !== null && re.matches(s);
      },
    };
  }
}

/** Compiles a pattern with re2js, or throws 400 (never echoing the pattern or re2js's message). */
function compileOrReject(pattern: string, what: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch {
    throw badRequest(REASON.invalidPattern, `${what} does not compile`);
  }
}

// ---------------------------------------------------------------------------------------------
// Engine

interface Entry {
  readonly name: string;
  readonly bits: number;
  readonly id: Matcher;
  readonly path: Matcher;
}

export interface PolicyEngineOptions {
  /** Callers whose relevant-policy subset is cached (LRU). Default 4096. */
  callerCacheSize?: number;
  logger?: Logger;
}

export interface LoadResult {
  /** False when the load was ignored because `generation` is older than the current one. */
  applied: boolean;
  policies: number;
}

/** Pure policy evaluation over a loaded policy list (see module doc). */
export class PolicyEngine {
  private entries: Entry[] = [];
  private byLiteralId = new Map<string, Entry[]>();
  private regexIdEntries: Entry[] = [];
  private gen = Number.NEGATIVE_INFINITY;
  /**
   * Per-caller cache as a two-generation LRU approximation: hits in `young` cost one lookup;
   * hits in `old` are promoted; when `young` is full it becomes `old` (the previous `old` is
   * dropped). At most `cacheSize` callers are held.
   */
  private young = new Map<string, Entry[]>();
  private old = new Map<string, Entry[]>();
  private readonly cacheSize: number;
  private readonly patterns: PatternCache;
  private readonly logger: Logger | undefined;

  constructor(opts: PolicyEngineOptions = {}) {
    this.cacheSize = Math.max(1, opts.callerCacheSize ?? 4096);
    this.logger = opts.logger;
    this.patterns = new PatternCache(() => this.logger?.warn('a stored policy pattern does not compile; it matches nothing'));
  }

  /** The generation of the loaded policy set (−Infinity before the first load). */
  get generation(): number {
    return this.gen;
  }

  /** Number of loaded policies. */
  get size(): number {
    return this.entries.length;
  }

  /**
   * Replaces the policy set. `generation` must grow with every change (the store's policy
   * generation); a load older than the current one is ignored (a slow reader cannot roll the
   * engine back). The caller cache is cleared, so the next request sees the new set.
   * Stored policies are taken as they are (rows written around the API are still full-match
   * and still default-deny); patterns that do not compile match nothing.
   */
  load(policies: readonly PolicyLike[], generation: number): LoadResult {
    if (generation < this.gen) return { applied: false, policies: this.entries.length };
    const entries: Entry[] = [];
    const byLiteral = new Map<string, Entry[]>();
    const regexIds: Entry[] = [];
    const live = new Set<string>();
    for (const p of policies) {
      const e: Entry = {
        name: p.name,
        bits: permBits(p.permissions),
        id: this.patterns.get(p.spiffeIdPattern),
        path: this.patterns.get(p.pathPattern),
      };
      live.add(p.spiffeIdPattern);
      live.add(p.pathPattern);
      if (e.bits === 0) continue; // grants nothing
      entries.push(e);
      if (e.id.literal !== null) {
        const list = byLiteral.get(e.id.literal);
        if (list === undefined) byLiteral.set(e.id.literal, [e]);
        else list.push(e);
      } else {
        regexIds.push(e);
      }
    }
    this.patterns.retain(live);
    this.entries = entries;
    this.byLiteralId = byLiteral;
    this.regexIdEntries = regexIds;
    this.gen = generation;
    this.young = new Map();
    this.old = new Map();
    return { applied: true, policies: entries.length };
  }

  /** The policies whose identity pattern fully matches `peer` (cached per caller). */
  private relevant(peer: string): Entry[] {
    const hit = this.young.get(peer);
    if (hit !== undefined) return hit;
    let out = this.old.get(peer);
    if (out === undefined) {
      out = [...(this.byLiteralId.get(peer) ?? [])];
      for (const e of this.regexIdEntries) if (peer.startsWith(e.id.prefix) && e.id.matches(peer)) out.push(e);
    }
    if (this.young.size >= Math.max(1, this.cacheSize >> 1)) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(peer, out);
    return out;
  }

  /** True when some policy matches `peer` and `path` (full match) and grants `perm` or `super`. */
  allows(peer: SpiffeId | string, path: string, perm: Permission): boolean {
    const want = BIT[perm] | BIT.super;
    for (const e of this.relevant(typeof peer === 'string' ? peer : peer.toString())) {
      if ((e.bits & want) !== 0 && e.path.matches(path)) return true;
    }
    return false;
  }

  /** True when some policy for `peer` grants `perm` (or `super`) on any path. */
  grantsAnywhere(peer: SpiffeId | string, perm: Permission): boolean {
    const want = BIT[perm] | BIT.super;
    return this.relevant(typeof peer === 'string' ? peer : peer.toString()).some((e) => (e.bits & want) !== 0);
  }

  /** Names of the policies that apply to `peer` (diagnostics). */
  policiesFor(peer: SpiffeId | string): string[] {
    return this.relevant(typeof peer === 'string' ? peer : peer.toString()).map((e) => e.name);
  }

  /**
   * Validates a policy for a write (400 on any failure, D3): SPIKE's name rule, SPIKE's
   * SPIFFE-ID-pattern and path-pattern grammars, permissions, and both patterns must compile
   * on re2js. The compiled forms go into the pattern cache so the next load does not compile
   * them again.
   */
  compile(input: PolicyLike): CompiledPolicy {
    validatePolicyName(input.name);
    validateSpiffeIdPattern(input.spiffeIdPattern);
    validatePathPattern(input.pathPattern);
    const permissions = validatePermissions(input.permissions);
    compileOrReject(input.spiffeIdPattern, 'SPIFFE ID pattern');
    compileOrReject(input.pathPattern, 'path pattern');
    return Object.freeze({
      name: input.name,
      spiffeIdPattern: input.spiffeIdPattern,
      pathPattern: input.pathPattern,
      permissions: Object.freeze(permissions),
    });
  }

  /** Convenience for the policy put route's wire body (`spiffeidPattern`, lower-case i). */
  compileRequest(req: PolicyPutRequest): CompiledPolicy {
    return this.compile({
      name: req.name,
      spiffeIdPattern: req.spiffeidPattern,
      pathPattern: req.pathPattern,
      permissions: req.permissions,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Per-route authorisation (api.md §4)

/**
 * Nexus's route predicates. Order for secrets and policies: Pilot superuser → allow; Lite
 * workload → deny; else a policy. Cipher: Pilot or Lite → allow; else `execute` on the cipher
 * gate path. Recover / restore / bootstrap verify / Keeper routes: fixed roles only, never
 * policies (POL-16: even a `.*`/`.*` super policy cannot reach them).
 */
export class NexusAuthorizer {
  constructor(
    readonly engine: PolicyEngine,
    readonly ids: Recognisers,
  ) {}

  private viaPolicy(peer: SpiffeId, path: string, perm: Permission): boolean {
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return false;
    return this.engine.allows(peer, path, perm);
  }

  /**
   * Identity-only pre-check of the path-guarded secret routes, run before the body is read:
   * Pilot → yes; Lite → no; else whether any of the caller's policies grants `perm` (or
   * `super`) on any path. True whenever the per-path check below could be true for some path.
   */
  mayUseSecrets(peer: SpiffeId, perm: Permission): boolean {
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return false;
    return this.engine.grantsAnywhere(peer, perm);
  }

  canPutSecret(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'write');
  }
  canGetSecret(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'read');
  }
  canDeleteSecret(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'write');
  }
  canUndeleteSecret(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'write');
  }
  /** Additive `destroy`: same permission as delete (`write`). */
  canDestroySecret(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'write');
  }
  canReadSecretMetadata(peer: SpiffeId, path: string): boolean {
    return this.viaPolicy(peer, path, 'read');
  }

  /**
   * Gate of `secret list`: SPIKE's `list` on `spike/system/secret`, or (POL-21) `list` granted
   * by any of the caller's policies. What the caller then sees is filtered by
   * {@link canSeeSecretPath} (gaps A5: SPIKE returns every path).
   */
  canListSecrets(peer: SpiffeId): boolean {
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return false;
    return this.engine.allows(peer, GATE_PATHS.secret, 'list') || this.engine.grantsAnywhere(peer, 'list');
  }

  /** Whether a listed path is shown to the caller: Pilot, or `list` or `read` on that path. */
  canSeeSecretPath(peer: SpiffeId, path: string): boolean {
    if (this.ids.isPilotOperator(peer)) return true;
    if (this.ids.isLiteWorkload(peer)) return false;
    return this.engine.allows(peer, path, 'list') || this.engine.allows(peer, path, 'read');
  }

  canPutPolicy(peer: SpiffeId): boolean {
    return this.viaPolicy(peer, GATE_PATHS.acl, 'write');
  }
  canGetPolicy(peer: SpiffeId): boolean {
    return this.viaPolicy(peer, GATE_PATHS.acl, 'read');
  }
  canListPolicies(peer: SpiffeId): boolean {
    return this.viaPolicy(peer, GATE_PATHS.acl, 'list');
  }
  canDeletePolicy(peer: SpiffeId): boolean {
    return this.viaPolicy(peer, GATE_PATHS.acl, 'write');
  }

  canUseCipher(peer: SpiffeId): boolean {
    if (this.ids.isPilotOperator(peer) || this.ids.isLiteWorkload(peer)) return true;
    return this.engine.allows(peer, GATE_PATHS.cipher, 'execute');
  }

  canRecover(peer: SpiffeId): boolean {
    return this.ids.isPilotRecover(peer);
  }
  canRestore(peer: SpiffeId): boolean {
    return this.ids.isPilotRestore(peer);
  }
  canVerifyBootstrap(peer: SpiffeId): boolean {
    return this.ids.isBootstrap(peer);
  }
}

/** The guards for every Nexus route, bound to one authoriser. */
export interface NexusGuards {
  secretPut: Guard<SecretPutRequest>;
  secretGet: Guard<SecretGetRequest>;
  secretDelete: Guard<SecretVersionsRequest>;
  secretUndelete: Guard<SecretVersionsRequest>;
  secretDestroy: Guard<SecretVersionsRequest>;
  secretList: Guard<unknown>;
  secretMetadata: Guard<SecretGetRequest>;
  policyPut: Guard<PolicyPutRequest>;
  policyGet: Guard<PolicyByIdRequest>;
  policyList: Guard<PolicyListRequest>;
  policyDelete: Guard<PolicyByIdRequest>;
  cipher: Guard<unknown>;
  recover: Guard<unknown>;
  restore: Guard<unknown>;
  bootstrapVerify: Guard<unknown>;
}

/**
 * Path-guarded secret routes get an identity-only pre-check ({@link NexusAuthorizer.mayUseSecrets}
 * for the route's permission), run before the body is read; every other route's guard looks at
 * the identity only, so its pre-check is its whole check (guards.ts).
 */
export function nexusGuards(a: NexusAuthorizer): NexusGuards {
  const onPath = <B extends { path: string }>(name: string, perm: Permission, allow: (p: SpiffeId, path: string) => boolean): Guard<B> =>
    guardBody<B>(name, { admits: (p) => a.mayUseSecrets(p, perm), allow: (p, b) => allow(p, b.path) });
  return {
    secretPut: onPath<SecretPutRequest>('secret.put', 'write', (p, path) => a.canPutSecret(p, path)),
    secretGet: onPath<SecretGetRequest>('secret.get', 'read', (p, path) => a.canGetSecret(p, path)),
    secretDelete: onPath<SecretVersionsRequest>('secret.delete', 'write', (p, path) => a.canDeleteSecret(p, path)),
    secretUndelete: onPath<SecretVersionsRequest>('secret.undelete', 'write', (p, path) => a.canUndeleteSecret(p, path)),
    secretDestroy: onPath<SecretVersionsRequest>('secret.destroy', 'write', (p, path) => a.canDestroySecret(p, path)),
    secretList: guardIdentity('secret.list', (p) => a.canListSecrets(p)),
    secretMetadata: onPath<SecretGetRequest>('secret.metadata', 'read', (p, path) => a.canReadSecretMetadata(p, path)),
    policyPut: guardIdentity('policy.put', (p) => a.canPutPolicy(p)),
    policyGet: guardIdentity('policy.get', (p) => a.canGetPolicy(p)),
    policyList: guardIdentity('policy.list', (p) => a.canListPolicies(p)),
    policyDelete: guardIdentity('policy.delete', (p) => a.canDeletePolicy(p)),
    cipher: guardIdentity('cipher', (p) => a.canUseCipher(p)),
    recover: guardIdentity('operator.recover', (p) => a.canRecover(p)),
    restore: guardIdentity('operator.restore', (p) => a.canRestore(p)),
    bootstrapVerify: guardIdentity('bootstrap.verify', (p) => a.canVerifyBootstrap(p)),
  };
}
