/**
 * Test-only views of a route table: a listing of every route with its guard names, and a way
 * to run a route's full JSON guard on an arbitrary body, so a test can walk the table and
 * prove every guard denies an unrelated identity. Not used on the request path.
 */
import type { Guard, Route } from '../../src/http/index.js';

/** Lists routes (name, guard name) — for the guard-coverage test. */
export function describeRoutes<P>(routes: ReadonlyArray<Route<P>>): Array<{ name: string; path: string; action: string; guard: string; streamGuard: string | null; allowBeforeReady: boolean }> {
  return routes.map((r) => ({
    name: r.name,
    path: r.path,
    action: r.action,
    guard: r.guard.name,
    streamGuard: r.streamGuard?.name ?? null,
    allowBeforeReady: r.allowBeforeReady,
  }));
}

/** Runs a route's JSON guard on an arbitrary body. */
export function probeGuard<P>(route: Route<P>, peer: P, body: unknown): boolean {
  return (route.guard as unknown as Guard<unknown, P>).check(peer, body) === true;
}
