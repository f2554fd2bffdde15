/**
 * `s.rss.after_fuzz` (issue 17): Nexus RSS ten seconds after a burst of hostile traffic, vs
 * its idle RSS measured just before, on its own stack (spike-agent, 3 Keepers, spike-nexus on
 * SQLite, each its own process). The traffic is what an outsider and a confused client can
 * send: new connections only (full TLS handshakes every time), garbage instead of a
 * ClientHello, handshakes without a client certificate, verified clients sending garbage
 * HTTP, malformed JSON and bodies up to the size cap. Goal: RSS after ≤ 1.5× idle.
 *
 * `env` runs Nexus with extra environment (the allocator settings the deployment units set,
 * src/lib/allocator.ts), so they can be compared with glibc's defaults in the same run.
 * Run alone: `node dist/bench/hostile-rss.js [seconds]`.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../src/spiffe/index.js';
import { ALLOCATOR_ENV } from '../src/lib/index.js';
import { Stack } from '../test/helpers/stack.js';
import type { BenchResult } from './types.js';

const CONCURRENCY = 48;
const SETTLE_MS = 10_000;

const memOf = (pid: number): { rss: number; anon: number } => {
  const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(s)?.[1] ?? Number.NaN);
  return { rss: kb('Rss') / 1024, anon: kb('Anonymous') / 1024 };
};

interface Peer { cert: string; key: string; ca: string[] }

/** One hostile connection of kind `k`; resolves when the server closed it or after 1.5 s. */
function oneAttack(port: number, peer: Peer, k: number): Promise<void> {
  return new Promise((resolve) => {
    let sock: net.Socket;
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    };
    const timer = setTimeout(done, 1500);
    const opts = { host: '127.0.0.1', port, ca: peer.ca, rejectUnauthorized: false };
    switch (k % 5) {
      case 0: // not TLS at all
        sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(randomBytes(64 + (k % 4096))));
        break;
      case 1: // TLS without a client certificate
        sock = tls.connect(opts, () => sock.write('POST /v1/store/secrets HTTP/1.1\r\n\r\n'));
        break;
      case 2: // verified client, garbage instead of HTTP
        sock = tls.connect({ ...opts, cert: peer.cert, key: peer.key }, () => sock.write(randomBytes(1024 + (k % 60_000))));
        break;
      case 3: { // verified client, malformed JSON
        const body = `{"path":"a","values":{${'"k":'.repeat(2000)}`;
        sock = tls.connect({ ...opts, cert: peer.cert, key: peer.key }, () =>
          sock.write(`POST /v1/store/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
        break;
      }
      default: { // verified client, a body at the size cap (1 MiB) of random bytes
        const body = randomBytes(1 << 20);
        sock = tls.connect({ ...opts, cert: peer.cert, key: peer.key }, () => {
          sock.write(`POST /v1/store/secrets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
          sock.write(body);
        });
      }
    }
    sock.on('error', done);
    sock.on('close', done);
    sock.on('data', () => undefined);
  });
}

/** Runs the hostile load against a fresh stack; `env` goes to Nexus. */
export async function hostileRss(seconds: number, env: Record<string, string> = {}): Promise<{ idle: number; peak: number; after: number; afterAnon: number; attacks: number }> {
  const stack = await Stack.start({ nexusEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN', ...env }, keeperEnv: { SPIKE_SYSTEM_LOG_LEVEL: 'WARN' } });
  try {
    const pilot = await stack.client('pilot');
    for (let i = 0; i < 20; i++) await pilot.putSecret(`bench/fuzz/${i}`, { k: 'v' });
    for (let i = 0; i < 20; i++) await pilot.getSecret(`bench/fuzz/${i}`);
    const pid = stack.pid('nexus');
    if (pid === undefined) throw new Error('nexus not running');
    await new Promise((r) => setTimeout(r, 2000));
    const idle = memOf(pid).rss;
    const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
    const svid = source.getX509Svid();
    const peer: Peer = { cert: svidChainPem(svid), key: svidPrivateKeyPem(svid).toString(), ca: source.bundleSet().allAuthorities().map((c) => c.toString()) };
    source.close();
    const port = Number(new URL(stack.nexusUrl).port);
    let attacks = 0;
    let peak = idle;
    const t0 = performance.now();
    const sampler = setInterval(() => { peak = Math.max(peak, memOf(pid).rss); }, 500);
    await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (performance.now() - t0 < seconds * 1000) await oneAttack(port, peer, w * 7919 + attacks++);
    }));
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const m = memOf(pid);
    // still serving
    await pilot.getSecret('bench/fuzz/1');
    return { idle, peak, after: m.rss, afterAnon: m.anon, attacks };
  } finally {
    await stack.stop();
  }
}

/** The bench rows: default allocator, and with the settings the deployment units set. */
export async function benchHostileRss(seconds: number): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  const units = Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`).join(', ');
  for (const [label, env] of [[`deployment units' allocator settings (${units})`, ALLOCATOR_ENV], ['glibc malloc defaults', {}]] as const) {
    const r = await hostileRss(seconds, env);
    out.push({
      id: Object.keys(env).length > 0 ? 's.rss.after_fuzz' : 's.rss.after_fuzz.default-malloc',
      name: `Nexus RSS 10 s after ${seconds} s of hostile connections (${label})`,
      value: r.after, unit: 'MiB', baseline: r.idle, ratio: r.after / r.idle,
      note: `baseline: idle RSS just before; peak ${r.peak.toFixed(0)} MiB; ${r.attacks} hostile connections (${CONCURRENCY} at a time); private part after: ${r.afterAnon.toFixed(0)} MiB`,
    });
  }
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 30);
  const env = process.argv[3] ? Object.fromEntries(process.argv.slice(3).map((kv) => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)]; })) : undefined;
  (env ? hostileRss(seconds, env).then((r) => [r]) : benchHostileRss(seconds))
    .then((rs) => process.stdout.write(`${JSON.stringify(rs, null, 1)}\n`))
    .catch((e: unknown) => {
      process.stderr.write(`bench failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
      process.exitCode = 1;
    });
}
