/**
 * Store metrics without a metrics library here: {@link instrumentStore} wraps a store so
 * every call of the {@link Store} interface reports its operation name (a fixed method name,
 * never an argument), outcome and duration to an observer. Everything else passes through.
 */
import { performance } from 'node:perf_hooks';
import type { Store } from './types.js';

export interface StoreObserver {
  /** `op` is a Store method name; `ok` false when it threw. Must not throw. */
  operation(op: string, seconds: number, ok: boolean): void;
}

const TIMED: ReadonlySet<string> = new Set([
  'getSystem', 'putSystemIfAbsent', 'putSystem', 'unlock', 'adoptKey', 'putSecret', 'getSecret', 'deleteSecret',
  'undeleteSecret', 'destroySecret', 'getSecretMetadata', 'listSecretPaths', 'listSecretPathPage', 'putPolicy', 'getPolicy', 'deletePolicy',
  'listPolicies', 'policyGeneration',
]);

export function instrumentStore(store: Store, observer: StoreObserver): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !TIMED.has(prop) || typeof value !== 'function') {
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      }
      return async (...args: unknown[]): Promise<unknown> => {
        const started = performance.now();
        let ok = false;
        try {
          const r = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          ok = true;
          return r;
        } finally {
          observer.operation(prop, (performance.now() - started) / 1000, ok);
        }
      };
    },
  });
}
