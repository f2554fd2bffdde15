/**
 * A LISTEN client for the `postgres` backend's policy-change notifications (tests only).
 *
 * Every policy write bumps the shared generation and sends
 * `pg_notify('spike_policy_changed', <generation>)` at commit. Nexus itself does not
 * listen — it compares `policyGeneration()` before each request, which is what makes a
 * change made elsewhere visible on the very next request — so only the tests that check
 * the notification (and that it survives a server restart) open this connection.
 *
 * `listenPolicyChanges` calls `cb(generation)` with each notified generation, and with
 * the current generation every time the connection is (re)established, so changes made
 * while it was disconnected are coalesced, never missed. It reconnects with capped
 * exponential backoff until the returned `stop()` is called.
 */
import pg from 'pg';
import { Backoff } from '../../src/lib/backoff.js';
import { POLICY_CHANNEL } from '../../src/store/postgres/index.js';

export interface PolicyListenerOptions {
  connectionString: string;
  /** Connection attempt deadline (default 5 s). */
  connectTimeoutMs?: number;
  /** Reconnect backoff: first and largest delay in ms (defaults 100 and 5000). */
  retryMs?: { min: number; max: number };
}

export function listenPolicyChanges(opts: PolicyListenerOptions, cb: (generation: number) => void): () => void {
  const backoff = new Backoff({ initialMs: opts.retryMs?.min ?? 100, maxMs: opts.retryMs?.max ?? 5_000 });
  let client: pg.Client | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  const schedule = (): void => {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, backoff.next());
    timer.unref();
  };

  const connect = async (): Promise<void> => {
    if (stopped) return;
    const c = new pg.Client({
      connectionString: opts.connectionString,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      application_name: 'spike-test-listen',
    });
    client = c;
    let failed = false;
    const fail = (): void => {
      if (failed) return;
      failed = true;
      if (client === c) client = null;
      c.removeAllListeners('notification');
      c.end().catch(() => undefined);
      schedule();
    };
    c.on('error', fail);
    c.on('end', fail);
    c.on('notification', (msg) => {
      if (msg.channel !== POLICY_CHANNEL) return;
      const generation = Number(msg.payload);
      if (Number.isSafeInteger(generation)) cb(generation);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${POLICY_CHANNEL}`);
      const r = await c.query<{ value: string }>(`SELECT value::text AS value FROM spike_counters WHERE name = 'policy_generation'`);
      if (stopped) {
        c.end().catch(() => undefined);
        return;
      }
      backoff.reset();
      const v = r.rows[0]?.value;
      if (v !== undefined) cb(Number(v));
    } catch {
      fail();
    }
  };

  void connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
    const c = client;
    client = null;
    if (c) {
      c.removeAllListeners('end');
      c.end().catch(() => undefined);
    }
  };
}
