/**
 * The undici dispatcher behind `createMtlsDispatcher` (dialer.ts): one undici `Pool` per
 * origin, kept while it is in use (a client talks to a few Nexus or Keeper addresses).
 *
 * Not undici's `Agent` (7.x): it closes an origin's pool when a connection to it fails while it
 * counts none open, and the pools it closed keep counting their connections' events against the
 * pool that replaced them, so after a server restart each new pool was closed in turn and every
 * connection it made was destroyed as soon as its handshake ended (UND_ERR_DESTROYED). Measured
 * with 20 identities × 4 connections under load: ~250 full mTLS handshakes a second on both
 * sides and half the throughput (p99 ~1 s) for as long as the load lasted after Nexus
 * restarted; with this dispatcher, the rate before the restart within 5 s. (undici 8 fixed the
 * Agent, for Node 22 and later only.)
 *
 * Here nothing listens to a pool to decide its fate: a pool is dropped only when the map holds
 * more than {@link SWEEP_ABOVE} origins and it has no connection and no request. Like undici's
 * own dispatchers, a request that cannot be dispatched (closed, no origin) fails through its
 * handler, and the pools' events are re-emitted with this dispatcher first among the targets.
 * State lives under symbol keys, not `#private` fields: `compose()` returns a Proxy, and
 * `close()` called through it runs with the Proxy as `this`.
 */
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';

/** Origins held before idle pools are dropped (when a new origin comes). */
export const SWEEP_ABOVE = 64;

const POOL_EVENTS = ['connect', 'disconnect', 'connectionError', 'drain'] as const;
const kPools = Symbol('pools');
const kOptions = Symbol('options');
const kState = Symbol('state');

type Handler = Dispatcher.DispatchHandler & {
  onError?: (err: Error) => void;
  onResponseError?: (controller: unknown, err: Error) => void;
};

type PoolsDispatcher = new (options: Undici.Pool.Options) => Dispatcher;
let poolsClass: PoolsDispatcher | undefined;

/** A dispatcher with one pool per origin over `options` (see the module comment). */
export function createPoolsDispatcher(u: typeof Undici, options: Undici.Pool.Options): Dispatcher {
  poolsClass ??= definePools(u);
  return new poolsClass(options);
}

function definePools(u: typeof Undici): PoolsDispatcher {
  return class MtlsPools extends u.Dispatcher {
    readonly [kOptions]: Undici.Pool.Options;
    readonly [kPools] = new Map<string, Undici.Pool>();
    [kState]: 'open' | 'closed' | 'destroyed' = 'open';

    constructor(options: Undici.Pool.Options) {
      super();
      this[kOptions] = options;
    }

    get closed(): boolean {
      return this[kState] !== 'open';
    }

    get destroyed(): boolean {
      return this[kState] === 'destroyed';
    }

    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      try {
        if (this[kState] === 'destroyed') throw new u.errors.ClientDestroyedError();
        if (this[kState] === 'closed') throw new u.errors.ClientClosedError();
        const raw: unknown = options.origin;
        if (!(typeof raw === 'string' || raw instanceof URL) || String(raw) === '') throw new u.errors.InvalidArgumentError('opts.origin must be a non-empty string or URL.');
        const origin = new URL(String(raw)).origin;
        if (origin === 'null') throw new u.errors.InvalidArgumentError('opts.origin must be a non-empty string or URL.');
        return this.#pool(origin).dispatch(options, handler);
      } catch (err) {
        const h = handler as Handler;
        if (typeof h.onError === 'function') h.onError(err as Error);
        else if (typeof h.onResponseError === 'function') h.onResponseError(null, err as Error);
        else throw err;
        return false;
      }
    }

    #pool(origin: string): Undici.Pool {
      const known = this[kPools].get(origin);
      if (known !== undefined) return known;
      if (this[kPools].size >= SWEEP_ABOVE) this.#sweep();
      const pool = new u.Pool(origin, this[kOptions]);
      // Typed per event in undici's declarations; forwarded alike here, through the plain emitter.
      const from = pool as unknown as NodeJS.EventEmitter;
      const to = this as unknown as NodeJS.EventEmitter;
      for (const event of POOL_EVENTS) {
        from.on(event, (o: URL, targets: Dispatcher[], err?: Error) => to.emit(event, o, [this, ...targets], err));
      }
      this[kPools].set(origin, pool);
      return pool;
    }

    /** Drops the pools with no connection and no request (removed from the map, then closed). */
    #sweep(): void {
      for (const [origin, pool] of this[kPools]) {
        const s = pool.stats;
        if (s.connected === 0 && s.size === 0) {
          this[kPools].delete(origin);
          void pool.close().catch(() => undefined);
        }
      }
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      if (this[kState] === 'open') this[kState] = 'closed';
      const done = Promise.all([...this[kPools].values()].map((p) => p.close())).then(() => undefined);
      if (callback === undefined) return done;
      void done.then(callback, callback);
    }

    override destroy(): Promise<void>;
    override destroy(err: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(err: Error | null, callback: () => void): void;
    override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
      this[kState] = 'destroyed';
      const err = typeof a === 'function' ? null : a ?? null;
      const callback = typeof a === 'function' ? a : b;
      const done = Promise.all([...this[kPools].values()].map((p) => p.destroy(err))).then(() => undefined);
      if (callback === undefined) return done;
      void done.then(callback, callback);
    }
  };
}

/** How many origins `d` holds a pool for (tests: the sweep). */
export function poolCount(d: Dispatcher): number {
  return (d as unknown as { [kPools]?: Map<string, unknown> })[kPools]?.size ?? 0;
}
