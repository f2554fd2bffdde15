/**
 * The policy engine (D3, POL-24): pure decisions over a loaded policy list. It is fed the list
 * plus a generation number ({@link PolicyEngine.load}) and never touches the store or HTTP.
 *
 * Matching is RE2 full match on both patterns (patterns.ts). Per caller SPIFFE ID the engine
 * caches the subset of policies whose identity pattern matches (bounded LRU); literal identity
 * patterns are found through a hash index, and a regex identity pattern is compiled and run
 * only for callers that start with its literal prefix, so a caller with no policies costs O(1)
 * (warm) or O(regex patterns) cheap prefix tests (cold) however many policies exist. Every load
 * clears the caller cache, so the very next request sees the change (no stale allow after a
 * delete returns: POL-17). Patterns are compiled once per distinct string, never per request.
 */
import type { Logger } from '../../lib/index.js';
import type { SpiffeId } from '../../spiffe/index.js';
import { type CompiledPolicy, type Permission, type PolicyLike, permissionBits, wantedBits } from './model.js';
import { type Matcher, PatternCache } from './patterns.js';
import { compilePolicy } from './validate.js';

/** The policy put route's wire fields (`spiffeidPattern`, lower-case i, as in SPIKE). */
interface PolicyPutFields {
  readonly name: string;
  readonly spiffeidPattern: string;
  readonly pathPattern: string;
  readonly permissions: readonly string[];
}

interface Entry {
  readonly name: string;
  readonly bits: number;
  readonly id: Matcher;
  readonly path: Matcher;
}

interface PolicyEngineOptions {
  /** Callers whose relevant-policy subset is cached (LRU). Default 4096. */
  callerCacheSize?: number;
  logger?: Logger;
}

interface LoadResult {
  /** False when the load was ignored because `generation` is older than the current one. */
  applied: boolean;
  policies: number;
}

const idOf = (peer: SpiffeId | string): string => (typeof peer === 'string' ? peer : peer.toString());

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
    for (const policy of policies) {
      const entry: Entry = {
        name: policy.name,
        bits: permissionBits(policy.permissions),
        id: this.patterns.get(policy.spiffeIdPattern),
        path: this.patterns.get(policy.pathPattern),
      };
      live.add(policy.spiffeIdPattern);
      live.add(policy.pathPattern);
      if (entry.bits === 0) continue; // grants nothing
      entries.push(entry);
      if (entry.id.literal !== null) {
        const list = byLiteral.get(entry.id.literal);
        if (list === undefined) byLiteral.set(entry.id.literal, [entry]);
        else list.push(entry);
      } else {
        regexIds.push(entry);
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
      for (const entry of this.regexIdEntries) if (peer.startsWith(entry.id.prefix) && entry.id.matches(peer)) out.push(entry);
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
    const want = wantedBits(perm);
    for (const entry of this.relevant(idOf(peer))) {
      if ((entry.bits & want) !== 0 && entry.path.matches(path)) return true;
    }
    return false;
  }

  /** True when some policy for `peer` grants `perm` (or `super`) on any path. */
  grantsAnywhere(peer: SpiffeId | string, perm: Permission): boolean {
    const want = wantedBits(perm);
    return this.relevant(idOf(peer)).some((entry) => (entry.bits & want) !== 0);
  }

  /** Names of the policies that apply to `peer` (diagnostics). */
  policiesFor(peer: SpiffeId | string): string[] {
    return this.relevant(idOf(peer)).map((entry) => entry.name);
  }

  /** The write-time checks ({@link compilePolicy}); throws a `PolicyError`. */
  compile(input: PolicyLike): CompiledPolicy {
    return compilePolicy(input);
  }

  /** {@link compile} for the policy put route's wire body (`spiffeidPattern`, lower-case i). */
  compileRequest(req: PolicyPutFields): CompiledPolicy {
    return this.compile({
      name: req.name,
      spiffeIdPattern: req.spiffeidPattern,
      pathPattern: req.pathPattern,
      permissions: req.permissions,
    });
  }
}
