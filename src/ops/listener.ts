/**
 * The operations listener: plain HTTP (node:http), no TLS and no client identity, for load
 * balancers, orchestrator probes and a Prometheus scraper. It serves three read-only routes
 * and nothing else:
 *
 *   GET|HEAD /healthz  200 while the process serves at all
 *   GET|HEAD /readyz   200 when the component is ready, else 503 naming the failing conditions
 *   GET|HEAD /metrics  Prometheus text format (when a registry is attached)
 *
 * Any other path is 404, any other method 405. Nothing it answers may help an outsider: the
 * readiness body names conditions from a fixed set (never key material, paths, workload IDs
 * or counts of secrets), and metric labels are bounded sets (metrics.ts). It never reads a
 * request body, keeps header and request timeouts small, caps its connections per remote
 * address and in total without letting idle ones lock out a probe (slots.ts), renders
 * `/metrics` at most once per {@link METRICS_GAP_MS} however many scrapes arrive (each answer
 * still rendered after its request arrived), logs nothing per request at the default level,
 * and a failure in a probe answers 500 instead of reaching the process.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../lib/index.js';
import { OpsSlots } from './slots.js';

/** A readiness verdict: `failing` lists condition names from a fixed set, e.g. `root_key`. */
export interface Readiness {
  ready: boolean;
  failing: string[];
}

/** What `/metrics` serves. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface OpsServerOptions {
  host: string;
  port: number;
  logger: Logger;
  readiness(): Readiness | Promise<Readiness>;
  metrics?: MetricsSource;
  /** Connections at once; default 32. */
  maxConnections?: number;
  /** Connections at once from one remote address; default 8. */
  maxConnectionsPerAddress?: number;
}

export interface OpsServer {
  /** The bound port after `listen()` (the requested one before). */
  readonly port: number;
  /** `http://host:port` of the bound listener. */
  readonly url: string;
  /** Bound and serving (false before `listen()`, after `close()`, or while its port is taken). */
  readonly listening: boolean;
  listen(): Promise<void>;
  close(): Promise<void>;
}

const OPS_LIMITS = Object.freeze({ headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, idleTimeoutMs: 15_000, maxHeaderBytes: 8 * 1024 });
const ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
/** `/metrics` renders start at least this far apart; scrapes meanwhile share the next one. */
export const METRICS_GAP_MS = 100;

/**
 * `render`, shared by every call that arrives before the next render starts; renders start at
 * least `gapMs` apart. Every answer is rendered after its call arrived (never a stale one).
 */
function pacedRender(render: () => Promise<string>, gapMs: number): () => Promise<string> {
  let lastStart = -Infinity;
  let next: Promise<string> | undefined;
  return () => {
    if (next) return next;
    const wait = lastStart + gapMs - Date.now();
    next = new Promise<void>((r) => (wait > 0 ? setTimeout(r, wait) : r())).then(() => {
      next = undefined;
      lastStart = Date.now();
      return render();
    });
    return next;
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

/** Creates (but does not start) the operations listener; see the module comment. */
export function createOpsServer(opts: OpsServerOptions): OpsServer {
  const log = opts.logger;
  const server = http.createServer({
    headersTimeout: OPS_LIMITS.headersTimeoutMs,
    requestTimeout: OPS_LIMITS.requestTimeoutMs,
    keepAliveTimeout: OPS_LIMITS.keepAliveTimeoutMs,
    maxHeaderSize: OPS_LIMITS.maxHeaderBytes,
    connectionsCheckingInterval: 1_000,
  });
  server.setTimeout(OPS_LIMITS.idleTimeoutMs);
  server.maxRequestsPerSocket = 100;
  const slots = new OpsSlots({ total: opts.maxConnections ?? 32, perAddress: opts.maxConnectionsPerAddress ?? 8 });
  server.on('connection', (s: Socket) => {
    if (!slots.admit(s)) s.destroy();
  });
  const metrics = opts.metrics ? pacedRender(() => opts.metrics!.render(), METRICS_GAP_MS) : undefined;
  server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());

  const answer = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    req.resume(); // never read a body; drain whatever was sent
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!ROUTES.has(path) || (path === '/metrics' && opts.metrics === undefined)) {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    } else if (path === '/readyz') {
      const r = await opts.readiness();
      send(res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify({ ready: r.ready, failing: r.failing })}\n`);
    } else {
      send(res, 200, opts.metrics!.contentType, await metrics!());
    }
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const done = slots.requestStarted(req.socket);
    res.once('finish', done);
    res.once('close', done);
    answer(req, res).catch((e: unknown) => {
      log.debug({ event: 'ops_probe_failed', code: (e as { code?: unknown })?.code ?? 'internal' }, 'operations request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });

  let listening = false;
  const self: OpsServer = {
    get port(): number {
      const a = server.address();
      return a && typeof a === 'object' ? (a as AddressInfo).port : opts.port;
    },
    get url(): string {
      return `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${self.port}`;
    },
    get listening(): boolean {
      return listening;
    },
    listen(): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        // A failed attempt (port taken) leaves no listener behind: Nexus may retry for long.
        const onListening = (): void => {
          server.off('error', onError);
          server.on('error', (err: NodeJS.ErrnoException) => log.error({ event: 'ops_server_error', code: err.code ?? 'unknown' }, 'operations listener error'));
          listening = true;
          resolve();
        };
        const onError = (err: Error): void => {
          server.off('listening', onListening);
          reject(err);
        };
        server.once('error', onError);
        server.once('listening', onListening);
        server.listen(opts.port, opts.host);
      });
    },
    close(): Promise<void> {
      if (!listening) return Promise.resolve();
      listening = false;
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        slots.cutAll();
      });
    },
  };
  return self;
}
