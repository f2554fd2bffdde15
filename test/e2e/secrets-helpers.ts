/**
 * Helpers for the secret/policy end-to-end tests: a raw mTLS client (exact status and body
 * bytes, arbitrary bodies) with a given identity's SVID from the stack's spike-agent, built on
 * the project's own mTLS dispatcher (the server must be Nexus), plus small utilities.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { SpiffeId } from '../../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';
import { Stack } from '../helpers/stack.js';
import { PATHS } from '../../src/protocol/index.js';

export interface RawReply {
  status: number;
  body: string;
  json: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface RawClient {
  post(route: string, body: unknown, opts?: { headers?: Record<string, string>; method?: string }): Promise<RawReply>;
  close(): Promise<void>;
}

/**
 * A raw client for `stack` as `identity` (a socket name of the stack's agent); `url` points it
 * at another Nexus (e.g. an in-process one using the stack's `nexus` SVID); `connections: 1`
 * with a long keep-alive keeps every request on one connection (one worker of several).
 */
export async function rawClient(stack: Stack, identity: string, opts: { url?: string; connections?: number; keepAliveTimeoutMs?: number } = {}): Promise<RawClient> {
  const base = opts.url ?? stack.nexusUrl;
  const source = await WorkloadX509Source.open({ endpoint: stack.socket(identity), timeoutMs: 15_000 });
  const nexusId = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
  const dispatcher: Dispatcher = createMtlsDispatcher({
    source, authorizeServer: authorizeIf((id) => id.equals(nexusId)),
    ...(opts.connections !== undefined ? { connections: opts.connections } : {}),
    ...(opts.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: opts.keepAliveTimeoutMs } : {}),
  });
  return {
    async post(route, body, opts = {}) {
      // A Readable is sent as it is (e.g. a large body in chunks, with its content-length header).
      const payload = body instanceof Readable ? body
        : Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
      const r = await request(base + route, {
        method: (opts.method ?? 'POST') as 'POST',
        body: opts.method === 'GET' ? null : payload,
        headers: { 'content-type': 'application/json', ...opts.headers },
        dispatcher,
      });
      const text = await r.body.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: r.statusCode, body: text, json, headers: r.headers as RawReply['headers'] };
    },
    async close() {
      await dispatcher.close();
      source.close();
    },
  };
}

/** Regex-escapes a literal for a policy pattern. */
export function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Bounded wait for a condition. */
export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Registers before/after hooks that start a stack with `nexusEnv` (3 Keepers, threshold 2)
 * and open a raw `pilot` client; the getters are valid inside the tests.
 */
export function useStackWithRawClient(nexusEnv: Record<string, string>): { stack: () => Stack; client: () => RawClient } {
  let stack: Stack | undefined;
  let client: RawClient | undefined;
  before(async () => {
    stack = await Stack.start({ keepers: 3, threshold: 2, nexusEnv });
    client = await rawClient(stack, 'pilot');
  });
  after(async () => {
    await client?.close();
    await stack?.stop();
  });
  return { stack: () => stack!, client: () => client! };
}

/** Request log lines of Nexus worker `worker` (SPIKE_NEXUS_WORKERS, INFO level). */
const requestLines = (logs: string, worker: number): number =>
  logs.split('\n').filter((l) => l.includes(`"worker":${worker},`) && l.includes('"msg":"request"')).length;

/** Which of two Nexus workers answers `c`'s connection (its request lines grow). */
export async function workerOf(stack: Stack, c: RawClient): Promise<number> {
  const before = [1, 2].map((w) => requestLines(stack.logs('nexus'), w));
  assert.equal((await c.post(`${PATHS.policy}?action=list`, {})).status, 200);
  let found = 0;
  await waitFor(() => {
    const now = [1, 2].map((w) => requestLines(stack.logs('nexus'), w));
    found = now[0]! > before[0]! ? 1 : now[1]! > before[1]! ? 2 : 0;
    return found !== 0;
  }, 10_000, 'the request line');
  return found;
}
