/**
 * A small TCP proxy for partition tests: a Nexus instance talks to its database through it,
 * and the test cuts that one path while the others keep working.
 *
 * Modes:
 * - `pass`: every connection is forwarded to the target, both ways;
 * - `refuse`: the listener is closed (new connections are refused) and every open
 *   connection is reset — what a stopped server or a rejecting firewall looks like;
 * - `blackhole`: open connections are reset, and new ones are accepted but never answered
 *   (their bytes are swallowed) — what a dropped route looks like to a client after its
 *   TCP handshake: only its own timeouts end the wait.
 * The listening port stays the same across modes.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  mode(m: ProxyMode): Promise<void>;
  /** Connections accepted so far (all modes). */
  accepted(): number;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let current: ProxyMode = 'pass';
  let accepted = 0;
  const open = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
  };
  const server = net.createServer((client) => {
    accepted++;
    track(client);
    if (current !== 'pass') {
      client.on('data', () => undefined); // swallowed: never forwarded, never answered
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  let listening = true;
  const resetAll = (): void => {
    for (const s of open) s.resetAndDestroy();
  };
  return {
    port,
    accepted: () => accepted,
    async mode(m) {
      current = m;
      if (m !== 'pass') resetAll();
      if (m === 'refuse' && listening) {
        listening = false;
        await new Promise<void>((r) => server.close(() => r()));
      } else if (m !== 'refuse' && !listening) {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => resolve());
        });
        listening = true;
      }
    },
    async close() {
      resetAll();
      if (listening) await new Promise<void>((r) => server.close(() => r()));
      listening = false;
    },
  };
}
