/**
 * Test support: a router (src/http) behind a plain HTTP server on 127.0.0.1:0, every request
 * made as `peer` ({@link serveRouter}) or as the SPIFFE ID in its `x-test-peer` header
 * ({@link serveRouterAsTestPeer}); and stream-only routes open to every caller
 * ({@link streamOnlyRoute}).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardIdentity } from '../../src/http/guards.js';
import { defineRoute, type Route, type StreamVariant } from '../../src/http/route.js';
import { s } from '../../src/http/schema.js';
import { SpiffeId } from '../../src/spiffe/id.js';

const allowAll = guardIdentity('test.allow', () => true);

/** A route whose stream variant answers with `handle` (any caller; its JSON variant answers `{}`). */
export function streamOnlyRoute(path: string, maxBodyBytes: number, handle: StreamVariant['handle']): Route {
  return defineRoute({ path, body: s.empty(), guard: allowAll, handle: () => ({}), stream: { guard: allowAll, maxBodyBytes, handle } });
}

export interface RouterServer {
  readonly port: number;
  close(): Promise<void>;
}

type Router<P> = (req: http.IncomingMessage, res: http.ServerResponse, peer: P) => Promise<void>;

export function serveRouter<P>(router: Router<P>, peer: P): Promise<RouterServer> {
  return listen(http.createServer((req, res) => void router(req, res, peer)));
}

/** Each request is made as the SPIFFE ID in its `x-test-peer` header (none: no identity). */
export function serveRouterAsTestPeer(router: Router<SpiffeId | null>): Promise<RouterServer> {
  return listen(http.createServer((req, res) => {
    const who = req.headers['x-test-peer'];
    void router(req, res, typeof who === 'string' ? SpiffeId.parse(who) : null);
  }));
}

async function listen(server: http.Server): Promise<RouterServer> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
