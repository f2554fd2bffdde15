/**
 * The several-cores prototype (issue 17, `cores.prototype.2v1`): a bare `https` mTLS server
 * under `node:cluster` with N workers sharing one listening port, each request costing a
 * fixed amount of CPU (a fixed number of SHA-256 rounds, the same work whatever the load),
 * answering the bench's GET JSON. It stands in for a Nexus worker: it measures what a second
 * worker process buys on this machine with the load generator beside it, not Nexus itself.
 *
 * Run as a child process by `bench/cores.ts` with the worker count and the rounds per request
 * as arguments; credentials arrive on stdin as the echo server's frames (`bench/echo-server.ts`)
 * and reach the workers over the cluster's IPC channel, never the disk or the environment.
 * Prints `cores ready <port> <pid> <pid>…` (the primary's and every worker's pid, for their
 * CPU time in /proc) once every worker listens.
 */
import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import https from 'node:https';

interface Creds { cert: string; key: string; ca: string; body: string }

/** The fixed CPU cost of one request: `rounds` chained SHA-256 of 1 KiB. */
function burn(rounds: number): number {
  let d = Buffer.alloc(1024, 7);
  for (let i = 0; i < rounds; i++) d = Buffer.concat([createHash('sha256').update(d).digest(), d.subarray(32)]);
  return d[0] ?? 0;
}

function worker(): void {
  process.once('message', (m: Creds & { rounds: number }) => {
    const reply = Buffer.from(m.body, 'base64');
    const srv = https.createServer({
      cert: m.cert, key: m.key, ca: m.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', keepAliveTimeout: 30_000,
    }, (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        JSON.parse(Buffer.concat(parts).toString('utf8'));
        burn(m.rounds);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': reply.length });
        res.end(reply);
      });
    });
    // Port 0 under cluster: every worker shares the one port the primary picked.
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      process.send?.({ port: typeof a === 'object' && a ? a.port : 0 });
    });
  });
  // Asks for the credentials only once it listens for them (a message sent earlier is lost).
  process.send?.({ hello: true });
}

function readFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt32BE(off);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

async function primary(): Promise<void> {
  const workers = Number(process.argv[2] ?? 1);
  const rounds = Number(process.argv[3] ?? 100);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  const [cert, key, ca, body] = readFrames(all);
  if (!cert || !key || !ca || !body) throw new Error('cores-server: bad input');
  const creds = { cert: cert.toString(), key: key.toString(), ca: ca.toString(), body: body.toString('base64'), rounds };
  all.fill(0);
  const pids: number[] = [];
  let port = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    port = await new Promise<number>((resolve, reject) => {
      w.on('message', (m: { hello?: boolean; port?: number }) => {
        if (m.hello === true) w.send(creds);
        else if (typeof m.port === 'number') resolve(m.port);
      });
      w.once('exit', (code) => reject(new Error(`worker exited (${code})`)));
    });
    if (w.process.pid !== undefined) pids.push(w.process.pid);
  }
  process.stdout.write(`cores ready ${port} ${process.pid} ${pids.join(' ')}\n`);
}

if (cluster.isPrimary) {
  primary().catch((e: unknown) => {
    process.stderr.write(`cores-server failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
    process.exit(1);
  });
} else {
  worker();
}
