/**
 * The policy engine (D3, POL-24): pure decisions over a policy set. It is fed either the whole
 * list plus a generation number ({@link PolicyEngine.load}) or one change at a time
 * ({@link PolicyEngine.apply}), and never touches the store or HTTP.
 *
 * Matching is RE2 full match on both patterns (patterns.ts). Per caller SPIFFE ID the engine
 * caches the subset of policies whose identity pattern matches (bounded LRU, callers.ts);
 * literal identity patterns are found through a hash index, and a regex identity pattern is
 * compiled and run only for callers that start with its literal prefix, so a caller with no
 * policies costs O(1) (warm) or O(regex patterns) cheap prefix tests (cold) however many
 * policies exist. Patterns are compiled once per distinct string, never per request.
 *
 * Freshness (POL-17): a load clears the caller cache; an applied change forgets exactly the
 * callers it concerns. Either way the very next decision sees the change (no stale allow after
 * a delete returns). A change costs O(1) in the number of policies (plus the cached callers
 * it concerns), so a policy write does not scale with the policy count (issue 17).
 */
import type { Logger } from '../../lib/index.js';
import type { SpiffeId } from '../../spiffe/index.js';
import { CallerCache } from './callers.js';
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

/** One policy write, as the store committed it. */
export type PolicyChange =
  | { readonly kind: 'put'; readonly policy: PolicyLike }
  | { readonly kind: 'delete'; readonly name: string };

interface Entry {
  readonly name: string;
  readonly bits: number;
  readonly idPattern: string;
  readonly pathPattern: string;
  readonly id: Matcher;
  readonly path: Matcher;
}

interface PolicyEngineOptions {
  /** Callers whose relevant-policy subset is cached (LRU). Default 4096. */
  callerCacheSize?: number;
  logger?: Logger;
  /** Told the pattern work (units of {@link MAX_DECISION_WORK}) of every path pattern run: Nexus paces it per turn of the event loop (pacer.ts). */
  onPatternWork?: (units: number) => void;
}

interface LoadResult {
  /** False when the load was ignored because `generation` is older than the current one. */
  applied: boolean;
  policies: number;
}

const idOf = (peer: SpiffeId | string): string => (typeof peer === 'string' ? peer : peer.toString());

/**
 * Most pattern-matching work one decision may do (FI-13), in units of program instruction ×
 * path character (+1): the linear bound of running a path pattern (patterns.ts). An identity
 * allowed to write policies could otherwise make every request of a caller run 100 patterns of
 * 250 instructions over a 500-character path (12.5 M units: ~100 ms, measured). 1 M units
 * are ~10–20 ms at worst on a 2-core machine under load; ordinary policies never come near:
 * literal path patterns cost nothing, a pattern runs only when the path starts with its
 * literal prefix, the cheapest run first and the first that allows ends the decision (a
 * 40-instruction pattern on a 100-character path is 4,040 units, so 600 of them fit). A
 * decision that would need more is a denial, logged at WARN (at most every 10 s, with the
 * count).
 */
export const MAX_DECISION_WORK = 1_000_000;
const BUDGET_WARNING_INTERVAL_MS = 10_000;

/** Pure policy evaluation over a policy set (see module doc). */
export class PolicyEngine {
  /**
   * Every policy that grants something, by name (policies granting nothing are left out). A
   * name has one entry from the store; a hand-made list may repeat a name, and then each counts.
   */
  private byName = new Map<string, Entry[]>();
  private count = 0;
  private byLiteralId = new Map<string, Entry[]>();
  private regexIdEntries = new Set<Entry>();
  private gen = Number.NEGATIVE_INFINITY;
  /**
   * True when the set is known to be the store's set at `gen`, so one change committed as
   * generation `gen + 1` can be applied on top of it. A load that does not move the
   * generation forward (e.g. emptying the engine to fail closed) clears it.
   */
  private exact = false;
  /** See {@link changeCount}. */
  private changes = 0;
  private readonly callers: CallerCache<Entry>;
  /** The cached per-caller lists ordered by cost ({@link byCost}); dropped with their list. */
  private sortedLists = new WeakMap<Entry[], Entry[]>();
  private spent = 0;
  private budgetDenials = 0;
  private lastBudgetWarning = Number.NEGATIVE_INFINITY;
  private readonly patterns: PatternCache;
  private readonly logger: Logger | undefined;
  private readonly onPatternWork: ((units: number) => void) | undefined;

  constructor(opts: PolicyEngineOptions = {}) {
    this.callers = new CallerCache(Math.max(1, opts.callerCacheSize ?? 4096));
    this.logger = opts.logger;
    this.onPatternWork = opts.onPatternWork;
    this.patterns = new PatternCache(() => this.logger?.warn('a stored policy pattern does not compile or is too complex; it matches nothing'));
  }

  /** The generation of the loaded policy set (−Infinity before the first load). */
  get generation(): number {
    return this.gen;
  }

  /** Number of loaded policies that grant something. */
  get size(): number {
    return this.count;
  }

  /** Counts the changes to the loaded set (loads and applied changes); a reader notes it before it reads the store. */
  get changeCount(): number {
    return this.changes;
  }

  /**
   * Replaces the policy set. `generation` must grow with every change (the store's policy
   * generation). A load older than the current one is ignored — a slow reader cannot roll the
   * engine back — unless the reader says it began reading after the engine last changed
   * (`readSince` = {@link changeCount} before its reads): then the store itself went back (a
   * rollback accepted by the operator, a failover to a standby that lagged) and the set is
   * taken. The caller cache is cleared, so the next request sees the new set.
   * Stored policies are taken as they are (rows written around the API are still full-match
   * and still default-deny); patterns that do not compile match nothing.
   */
  load(policies: readonly PolicyLike[], generation: number, readSince?: number): LoadResult {
    const unchangedSinceRead = readSince !== undefined && readSince === this.changes;
    if (generation < this.gen && !unchangedSinceRead) return { applied: false, policies: this.count };
    const previous = [...this.byName.values()].flat();
    this.byName = new Map();
    this.count = 0;
    this.byLiteralId = new Map();
    this.regexIdEntries = new Set();
    this.callers.clear();
    for (const policy of policies) this.add(policy); // acquires the patterns still in use first …
    for (const entry of previous) this.releasePatterns(entry); // … so they stay compiled
    this.exact = generation > this.gen || unchangedSinceRead;
    this.gen = generation;
    this.changes++;
    return { applied: true, policies: this.count };
  }

  /**
   * The generation a change must build on, read before the store write ({@link apply}); null
   * when the loaded set is not known to equal the store's (then only a full load helps).
   */
  changeBase(): number | null {
    return this.exact ? this.gen : null;
  }

  /**
   * Applies one committed change incrementally when that is provably the same as a full
   * reload: the engine still holds the exact set of generation `base` (read before the
   * write) and the store's generation read after the write is `base + 1`, so this change is
   * the only one in between. Otherwise nothing changes and false is returned: reload.
   */
  apply(change: PolicyChange, base: number | null, generation: number): boolean {
    if (base === null || !this.exact || this.gen !== base || generation !== base + 1) return false;
    this.remove(change.kind === 'put' ? change.policy.name : change.name);
    if (change.kind === 'put') this.add(change.policy)?.path.cost(); // compiled now, by the write, not by the next request
    this.gen = generation;
    this.changes++;
    return true;
  }

  /** Adds one policy (one granting nothing is left out); its entry, if any. */
  private add(policy: PolicyLike): Entry | undefined {
    const bits = permissionBits(policy.permissions);
    if (bits === 0) return undefined; // grants nothing
    const entry: Entry = {
      name: policy.name,
      bits,
      idPattern: policy.spiffeIdPattern,
      pathPattern: policy.pathPattern,
      id: this.patterns.acquire(policy.spiffeIdPattern),
      path: this.patterns.acquire(policy.pathPattern),
    };
    const named = this.byName.get(entry.name);
    if (named === undefined) this.byName.set(entry.name, [entry]);
    else named.push(entry);
    this.count++;
    if (entry.id.literal !== null) {
      const list = this.byLiteralId.get(entry.id.literal);
      if (list === undefined) this.byLiteralId.set(entry.id.literal, [entry]);
      else list.push(entry);
    } else {
      this.regexIdEntries.add(entry);
    }
    this.callers.forgetMatching(entry.id);
    return entry;
  }

  /** Removes every entry named `name`. */
  private remove(name: string): void {
    const named = this.byName.get(name);
    if (named === undefined) return;
    this.byName.delete(name);
    this.count -= named.length;
    for (const entry of named) this.unindex(entry);
  }

  private unindex(entry: Entry): void {
    if (entry.id.literal !== null) {
      const list = this.byLiteralId.get(entry.id.literal) ?? [];
      const at = list.indexOf(entry);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.byLiteralId.delete(entry.id.literal);
    } else {
      this.regexIdEntries.delete(entry);
    }
    this.callers.forgetHolding(entry);
    this.releasePatterns(entry);
  }

  private releasePatterns(entry: Entry): void {
    this.patterns.release(entry.idPattern);
    this.patterns.release(entry.pathPattern);
  }

  /** The policies whose identity pattern fully matches `peer` (cached per caller). */
  private relevant(peer: string): Entry[] {
    let out = this.callers.get(peer);
    if (out !== undefined) return out;
    out = [...(this.byLiteralId.get(peer) ?? [])];
    for (const entry of this.regexIdEntries) if (peer.startsWith(entry.id.prefix) && entry.id.matches(peer)) out.push(entry);
    this.callers.set(peer, out);
    return out;
  }

  /** `list` ordered by the cost of its path patterns, cheapest (literals) first; cached with the list. */
  private byCost(list: Entry[]): Entry[] {
    let sorted = this.sortedLists.get(list);
    if (sorted === undefined) {
      sorted = [...list].sort((a, b) => a.path.cost() - b.path.cost());
      this.sortedLists.set(list, sorted);
    }
    return sorted;
  }

  /**
   * True when some policy matches `peer` and `path` (full match) and grants `perm` or `super`.
   * Path patterns run cheapest first, each only when the path starts with its literal prefix,
   * within {@link MAX_DECISION_WORK}: a decision that would need more is a denial (FI-13).
   */
  allows(peer: SpiffeId | string, path: string, perm: Permission): boolean {
    const want = wantedBits(perm);
    let left = MAX_DECISION_WORK;
    for (const entry of this.byCost(this.relevant(idOf(peer)))) {
      if ((entry.bits & want) === 0 || !path.startsWith(entry.path.prefix)) continue;
      const work = entry.path.cost() * (path.length + 1);
      if (work > left) {
        this.overBudget();
        return false;
      }
      left -= work;
      this.spent += work;
      this.onPatternWork?.(work);
      if (entry.path.matches(path)) return true;
    }
    return false;
  }

  /**
   * The most pattern work {@link allows} can do for this decision (never more than
   * {@link MAX_DECISION_WORK}): the same walk without matching; without `perm`, for whichever
   * permission. 0 when nothing would run.
   */
  decisionBound(peer: SpiffeId | string, path: string, perm?: Permission): number {
    const sorted = this.byCost(this.relevant(idOf(peer)));
    if ((sorted[sorted.length - 1]?.path.cost() ?? 0) === 0) return 0; // literal path patterns only (sorted cheapest first)
    const want = perm === undefined ? -1 : wantedBits(perm);
    let work = 0;
    for (const entry of sorted) {
      if ((entry.bits & want) === 0 || !path.startsWith(entry.path.prefix)) continue;
      work += entry.path.cost() * (path.length + 1);
      if (work >= MAX_DECISION_WORK) return MAX_DECISION_WORK;
    }
    return work;
  }

  /** Work units (program size × (path length + 1)) of every path pattern run so far (tests, FI-13). */
  get patternWork(): number {
    return this.spent;
  }

  private overBudget(): void {
    this.budgetDenials++;
    const now = Date.now();
    if (now - this.lastBudgetWarning < BUDGET_WARNING_INTERVAL_MS) return;
    this.lastBudgetWarning = now;
    this.logger?.warn({ denials: this.budgetDenials }, 'a policy decision needed more pattern matching than allowed; denied (FI-13)');
    this.budgetDenials = 0;
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
