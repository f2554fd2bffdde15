/**
 * Who gets a connection slot on the operations listener (listener.ts). It has no TLS and no
 * client identity, so anyone who can reach the port can open connections; a flat cap that
 * refuses newcomers once full let idle sockets from one client lock out the orchestrator's
 * probes (a failing liveness probe restarts Nexus and the Keepers, and Keepers keep their
 * shares in memory only). Instead:
 *
 * - one remote address holds at most `perAddress` connections; a newcomer from an address at
 *   its cap replaces that address's oldest connection not answering a request, or is refused;
 * - once `total` are open, a newcomer replaces the oldest connection not answering a request
 *   of the address that holds the most (so a probe from an address holding one is never
 *   the one replaced while any address holds more), or is refused when every connection is
 *   answering a request.
 *
 * A connection answering a request is never cut here: answers take milliseconds, and the
 * listener's header, request and idle timeouts bound the rest. Filling every slot so that a
 * probe is replaced takes as many remote addresses as there are slots.
 */
import type { Socket } from 'node:net';

interface Slot {
  addr: string;
  busy: number;
}

export class OpsSlots {
  readonly #total: number;
  readonly #perAddress: number;
  /** In arrival order (a Map keeps insertion order): the first match is the oldest. */
  readonly #slots = new Map<Socket, Slot>();
  readonly #byAddr = new Map<string, number>();

  constructor(o: { total: number; perAddress: number }) {
    this.#total = o.total;
    this.#perAddress = Math.min(o.perAddress, o.total);
  }

  get size(): number {
    return this.#slots.size;
  }

  /** A new connection: true when it may stay (another may have been cut for it); false: cut it. */
  admit(socket: Socket): boolean {
    const addr = socket.remoteAddress ?? '';
    if ((this.#byAddr.get(addr) ?? 0) >= this.#perAddress && !this.#cutOldestIdle(addr)) return false;
    if (this.#slots.size >= this.#total && !this.#cutOldestIdle(this.#busiestAddress())) return false;
    this.#slots.set(socket, { addr, busy: 0 });
    this.#byAddr.set(addr, (this.#byAddr.get(addr) ?? 0) + 1);
    socket.once('close', () => this.#release(socket));
    return true;
  }

  /** The connection started answering a request (`done` when that answer finished or failed). */
  requestStarted(socket: Socket): () => void {
    const slot = this.#slots.get(socket);
    if (!slot) return () => undefined;
    slot.busy++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      slot.busy--;
    };
  }

  /** Cuts every connection (the listener closes). */
  cutAll(): void {
    for (const s of [...this.#slots.keys()]) this.#cut(s);
  }

  /** The address holding the most connections, among those with one not answering a request (undefined: none). */
  #busiestAddress(): string | undefined {
    const idle = new Map<string, number>();
    for (const slot of this.#slots.values()) if (slot.busy === 0) idle.set(slot.addr, 0);
    let best: string | undefined;
    for (const addr of idle.keys()) {
      if (best === undefined || (this.#byAddr.get(addr) ?? 0) > (this.#byAddr.get(best) ?? 0)) best = addr;
    }
    return best;
  }

  #cutOldestIdle(addr: string | undefined): boolean {
    if (addr === undefined) return false;
    for (const [s, slot] of this.#slots) {
      if (slot.addr === addr && slot.busy === 0) {
        this.#cut(s);
        return true;
      }
    }
    return false;
  }

  #cut(socket: Socket): void {
    this.#release(socket);
    socket.destroy();
  }

  #release(socket: Socket): void {
    const slot = this.#slots.get(socket);
    if (!slot) return;
    this.#slots.delete(socket);
    const n = (this.#byAddr.get(slot.addr) ?? 1) - 1;
    if (n <= 0) this.#byAddr.delete(slot.addr);
    else this.#byAddr.set(slot.addr, n);
  }
}
