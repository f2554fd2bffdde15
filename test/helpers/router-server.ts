/**
 * Test support: a router (src/http) behind a plain HTTP server on 127.0.0.1:0, every request
 * made as `peer`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RouterServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function serveRouter<P>(router: (req: http.IncomingMessage, res: http.ServerResponse, peer: P) => Promise<void>, peer: P): Promise<RouterServer> {
  const server = http.createServer((req, res) => void router(req, res, peer));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
