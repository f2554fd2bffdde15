/**
 * Keeps the policy engine in step with the store (D3, POL-17): the engine is
 * reloaded whenever the store's policy generation moves. In one process every policy
 * write calls `reload()` before it answers, so the very next request sees the change. With
 * a shared database (postgres, several Nexus), `ensureFresh()` runs before every request and
 * compares the store's generation — a cheap single-row read — so a policy deleted through
 * another instance denies here on the next request.
 */
import { performance } from 'node:perf_hooks';
import { backoffDelay, outsideRequest, type Logger } from '../../lib/index.js';
import type { Store } from '../../store/index.js';
import type { PolicyEngine } from './engine.js';

/** Retry delays of the background reload after {@link PolicySync.failClosed}. */
const RELOAD_BACKOFF = { initialMs: 100, maxMs: 5000 } as const;

export class PolicySync {
  readonly #store: Store;
  readonly #engine: PolicyEngine;
  readonly #logger: Logger;
  readonly #shared: boolean;
  /** The generation check in flight (its read may predate requests that arrive now). */
  #running: Promise<void> | undefined;
  /** The next check, not started yet: requests arriving while one runs wait for this one. */
  #queued: Promise<void> | undefined;
  /** The last shared-store check failed: reload on the next one whatever the generation says. */
  #stale = false;
  /**
   * Why the engine cannot be trusted right now (the last freshness check or reload failed,
   * so it was emptied): the guard then answers 503 with this cause instead of a denial.
   */
  #failure: unknown = undefined;

  /** `shared`: other processes may change policies (postgres). */
  constructor(store: Store, engine: PolicyEngine, logger: Logger, shared: boolean) {
    this.#store = store;
    this.#engine = engine;
    this.#logger = logger;
    this.#shared = shared;
  }

  /** Metrics hook: seconds each successful reload took. */
  onReload: ((seconds: number) => void) | undefined;

  /**
   * Awaited before an older policy generation is loaded (the store went back): the rollback
   * check looks at the store at once, so requests are refused before the older set decides any.
   */
  beforeGoingBack: (() => Promise<void>) | undefined;

  /** Loads every policy into the engine (after unlock, and after each policy write). */
  async reload(): Promise<void> {
    const started = performance.now();
    const since = this.#engine.changeCount; // a store that went back is taken only by a read that began after the last change
    const held = this.#engine.generation;
    const generation = await this.#store.policyGeneration();
    if (generation < held) await this.beforeGoingBack?.();
    const policies = await this.#store.listPolicies();
    const result = this.#engine.load(policies, generation, since);
    this.#failure = undefined;
    if (result.applied && generation < held) this.#logger.warn({ generation, was: held }, 'the store\'s policy generation went back (a rollback or a failover): the stored policies were loaded');
    this.#logger.debug({ policies: result.policies, generation, applied: result.applied }, 'policies loaded');
    this.onReload?.((performance.now() - started) / 1000);
  }

  /**
   * After a failed reload following a policy write: empty the engine (default deny for
   * every policy-based decision) and keep retrying the reload in the background.
   */
  failClosed(attempt = 0, cause?: unknown): void {
    this.#failure = cause ?? this.#failure ?? new Error('policy reload failed');
    this.#stale = true;
    this.#engine.load([], this.#engine.generation);
    // The retry outlives the request that failed: no request deadline for it.
    const timer = outsideRequest(() => setTimeout(() => {
      this.reload().catch((e: unknown) => this.failClosed(attempt + 1, e));
    }, backoffDelay(attempt, RELOAD_BACKOFF)));
    timer.unref();
  }

  /**
   * Before a request: reload when another instance changed policies (shared stores only).
   * A request never joins a check whose read was already sent — that read may predate a
   * policy change committed before this request arrived (POL-17 across instances). It
   * joins the queued check instead, which starts when the running one ends, so at most
   * two checks exist at a time however many requests arrive.
   */
  ensureFresh(): Promise<void> {
    if (!this.#shared || !this.#store.isUnlocked()) return Promise.resolve();
    if (this.#queued) return this.#queued;
    if (this.#running) {
      const queued = this.#running.catch(() => undefined).then(() => {
        this.#queued = undefined;
        return this.#check();
      });
      this.#queued = queued;
      return queued;
    }
    return this.#check();
  }

  /**
   * Why policy decisions cannot be made now (the error of the last failed check or reload),
   * or undefined while the engine is current. A denial is only a denial when this is
   * undefined; otherwise the caller must hear "not ready" with this cause.
   */
  failure(): unknown {
    return this.#failure;
  }

  /** Records that a freshness check could not finish (e.g. the request's deadline passed first). */
  markUnavailable(cause: unknown): void {
    this.#stale = true;
    this.#failure = cause;
    this.#engine.load([], this.#engine.generation);
  }

  /** Starts a check now (its generation read is issued synchronously) and records it as running. */
  #check(): Promise<void> {
    const running: Promise<void> = (async () => {
      try {
        const generation = await this.#store.policyGeneration();
        if (this.#stale || generation !== this.#engine.generation) {
          await this.reload();
          this.#stale = false;
        }
      } catch (e) {
        // The shared store cannot tell us whether policies changed elsewhere: fail closed
        // (empty engine = default deny) until a check succeeds again, and say why (failure()).
        this.#stale = true;
        this.#failure = e;
        this.#engine.load([], this.#engine.generation);
        throw e;
      }
    })().finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }
}
