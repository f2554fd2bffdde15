/**
 * Test helper (not a test): a flood of completed mTLS handshakes in its own process, so the
 * flood's client-side TLS work does not stall the test's own event loop (FI-09).
 * Usage: node tls-flood.child.js <workload socket> <port> <per round> <rounds>.
 * For each round it opens `per round` connections at once from 127.0.0.3–18, waits for every
 * handshake to finish or fail, prints `round <n> <completed>`, and keeps the sockets open;
 * on stdin end it closes everything and exits.
 */
import net from 'node:net';
import tls from 'node:tls';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';

async function main(socket: string, port: number, perRound: number, rounds: number): Promise<void> {
  const source = await WorkloadX509Source.open({ endpoint: socket, timeoutMs: 15_000 });
  const svid = source.getX509Svid();
  const opts: tls.ConnectionOptions = {
    cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
    ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
    checkServerIdentity: () => undefined,
  };
  const all: tls.TLSSocket[] = [];
  for (let r = 1; r <= rounds; r++) {
    let up = 0;
    await Promise.all(Array.from({ length: perRound }, (_, i) => new Promise<void>((resolve) => {
      const raw = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${3 + (i % 16)}` });
      raw.on('error', () => undefined);
      const s = tls.connect({ ...opts, socket: raw });
      all.push(s);
      s.once('secureConnect', () => { up++; resolve(); });
      s.once('error', () => resolve());
      s.once('close', () => resolve());
      s.setTimeout(20_000, () => { s.destroy(); resolve(); });
    })));
    process.stdout.write(`round ${r} ${up}\n`);
  }
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const s of all) s.destroy();
    source.close();
    process.exit(0);
  });
}

const [socket, port, perRound, rounds] = process.argv.slice(2);
if (socket !== undefined && port !== undefined && perRound !== undefined && rounds !== undefined) {
  void main(socket, Number(port), Number(perRound), Number(rounds));
}
