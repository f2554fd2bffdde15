/**
 * Test support (not used by Nexus itself): runs Nexus route modules in-process behind a plain
 * HTTP server on 127.0.0.1:0 with the real router, guards, policy engine and a real store.
 * The caller identity is taken from the `x-test-peer` header (a SPIFFE ID string); mTLS and
 * peer extraction are tested elsewhere (`test/e2e/*`). Log lines are captured in memory so
 * tests can assert that no path or value is ever logged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { loadTrustRoots, recognisers } from '../../src/protocol/index.js';
import { type RequestAuditor, type Route, type RouterHandler, createRouter } from '../../src/http/index.js';
import { loadNexusConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/lib/log.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/types.js';
import { NexusAuthorizer, nexusGuards, nexusPacer } from '../../src/nexus/authz.js';
import type { NexusContext, RouteModule } from '../../src/nexus/context.js';
import { KeyState } from '../../src/nexus/keys/state.js';
import { PolicyEngine, PolicySync } from '../../src/nexus/policy/index.js';
import { spendTurnWork } from '../../src/lib/index.js';

export interface HarnessReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Parsed JSON body (undefined when not JSON). */
  json: unknown;
}

export interface RouteHarness {
  readonly ctx: NexusContext;
  readonly router: RouterHandler;
  readonly port: number;
  /** POST `body` (object → JSON) to `path` as `peer` (a SPIFFE ID; null = no identity). */
  post(path: string, body: unknown, peer: string | null, headers?: Record<string, string>): Promise<HarnessReply>;
  /** Everything logged so far. */
  logs(): string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  modules: readonly RouteModule[];
  store?: Store;
  env?: Record<string, string>;
  /** The audit hook the router calls (src/nexus/audit.ts). */
  auditor?: RequestAuditor;
  /**
   * A Nexus still waiting for its root key: no key installed and no policies loaded (the
   * store may be locked). Default: an ephemeral key is installed and policies are loaded.
   */
  keyless?: boolean;
}

export async function startRouteHarness(o: HarnessOptions): Promise<RouteHarness> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ component: 'nexus-test', level: 'debug', destination: sink });
  const store = o.store ?? new MemoryStore();
  const cfg = loadNexusConfig({ SPIKE_NEXUS_BACKEND_STORE: 'memory', ...o.env });
  const keys = new KeyState();
  if (o.keyless !== true) keys.installEphemeral();
  const ids = recognisers(loadTrustRoots({}));
  const engine = new PolicyEngine({ logger, onPatternWork: spendTurnWork });
  const pacer = nexusPacer(engine, ids);
  const authz = new NexusAuthorizer(engine, ids);
  const policies = new PolicySync(store, engine, logger, false);
  const ctx: NexusContext = { cfg, store, keys, ids, engine, pacer, authz, guards: nexusGuards(authz), policies, logger, sync: undefined, audit: { event: () => undefined } };
  if (store.kind !== 'lite' && o.keyless !== true) await policies.reload();
  const routes: Route[] = [];
  for (const m of o.modules) routes.push(...m(ctx));
  const router = createRouter(routes, { isReady: () => true, logger, maxBodyBytes: cfg.maxBodyBytes, beforeDecision: pacer.beforeDecision, ...(o.auditor ? { auditor: o.auditor } : {}) });
  const server = http.createServer((req, res) => {
    const who = req.headers['x-test-peer'];
    const peer = typeof who === 'string' && who !== '' ? SpiffeId.parse(who) : null;
    void router(req, res, peer);
  });
  // No idle timeout on the server side: with Node's 5 s default, a test that starts more than
  // 5 s after the previous request (a loaded machine) could send on a kept-alive socket at the
  // moment the server closes it, and fail with ECONNRESET. close() below ends every socket.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const post = (path: string, body: unknown, peer: string | null, headers: Record<string, string> = {}): Promise<HarnessReply> =>
    new Promise((resolve, reject) => {
      const payload = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...(peer === null ? {} : { 'x-test-peer': peer }), ...headers },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });

  return {
    ctx,
    router,
    port,
    post,
    logs: () => chunks.join(''),
    async close() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
