/**
 * Connection floods for attack tests: TCP sockets that never send a byte (no ClientHello).
 *
 * `SocketPool` keeps `size` such sockets open against one port, from one local address, and
 * reopens every socket the server closes (handshake timeout, eviction), as an attacker
 * would, at a bounded rate (`maxPerSecond`) so the test does not melt a shared machine.
 * `silentSocket` is one such socket, not reopened, that reports how long the server let it live.
 */
import net from 'node:net';

export interface PoolOptions {
  port: number;
  host?: string;
  /** Local address to connect from (another 127.0.0.0/8 address = another source). */
  localAddress?: string;
  size: number;
  maxPerSecond?: number;
  /** Reopen sockets the server closes (default true); false = one burst of `size` sockets. */
  reopen?: boolean;
  /**
   * Close and reopen each socket after this long (0 = never): a smarter attacker recycles
   * its sockets just before the server's handshake timeout, so slots never free in batches.
   */
  recycleMs?: number;
}

export class SocketPool {
  readonly #o: Required<PoolOptions>;
  readonly #open = new Set<net.Socket>();
  #wanted = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  /** Sockets the server closed (or refused) since start. */
  closedByServer = 0;
  /** For each socket the server closed after it connected: ms from its connect to its close. */
  readonly closeAges: number[] = [];
  opened = 0;

  constructor(o: PoolOptions) {
    this.#o = { host: '127.0.0.1', localAddress: '127.0.0.1', maxPerSecond: 2_000, reopen: true, recycleMs: 0, ...o };
  }

  get openCount(): number {
    return this.#open.size;
  }

  /** Opens the pool and keeps it full until `stop()`. */
  start(): void {
    this.#wanted = this.#o.size;
    const perTick = Math.max(1, Math.floor(this.#o.maxPerSecond / 100));
    this.#timer = setInterval(() => {
      for (let i = 0; i < perTick && this.#wanted > 0 && !this.#stopped; i++) this.#openOne();
    }, 10);
  }

  /** Resolves once `n` sockets are connected at the same time (or the deadline passes). */
  async waitOpen(n: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#connected < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.#connected} of ${n} flood sockets connected`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  #connected = 0;

  #openOne(): void {
    this.#wanted--;
    this.opened++;
    const s = net.connect({ port: this.#o.port, host: this.#o.host, localAddress: this.#o.localAddress });
    let up = false;
    let recycled = false;
    let connectedAt = 0;
    this.#open.add(s);
    s.on('connect', () => {
      up = true;
      connectedAt = performance.now();
      this.#connected++;
      if (this.#o.recycleMs > 0) {
        // Jittered (50–100 % of recycleMs) so the sockets do not all expire together.
        const after = this.#o.recycleMs * (0.5 + Math.random() / 2);
        setTimeout(() => { recycled = true; s.destroy(); }, after).unref();
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      this.#open.delete(s);
      if (up) this.#connected--;
      if (this.#stopped) return;
      if (!recycled) this.closedByServer++;
      if (!recycled && up) this.closeAges.push(performance.now() - connectedAt);
      if (this.#o.reopen) this.#wanted++;
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const s of this.#open) s.destroy();
  }
}

/** WARN-or-worse JSON log lines in `text` (one JSON object per line). */
export function warnLines(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o['level'] === 'warn' || o['level'] === 'error' || o['level'] === 'fatal') out.push(o);
    } catch {
      // not a log line
    }
  }
  return out;
}

/**
 * One TCP socket that never sends a ClientHello; resolves with how long (ms) the server let it
 * live. Destroyed by the client after `giveUpMs` (a hang guard).
 */
export function silentSocket(port: number, giveUpMs: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(port, host);
    s.on('error', () => { /* a reset is a close too */ });
    s.resume();
    s.on('close', () => resolve(performance.now() - t0));
    setTimeout(() => s.destroy(), giveUpMs).unref();
  });
}
