/**
 * FI-12's bombers, in a worker thread of their own so that their work (TLS, 64 KiB writes as
 * fast as Nexus takes them) does not delay the scenario's warm client, which measures Nexus.
 * workerData: { port, cert, key, ca, seconds, clients }; posts the outcome counts at the end.
 */
import tls from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';
type Kind = 'declared-64MiB' | 'chunked-endless' | 'deep-100k' | 'members-200k';
const KINDS: readonly Kind[] = ['declared-64MiB', 'chunked-endless', 'deep-100k', 'members-200k'];
const CHUNK = Buffer.alloc(64 * 1024, 0x20);

function head(extra: string): Buffer {
  return Buffer.from(`POST /v1/store/secrets HTTP/1.1\r\nHost: nexus\r\nContent-Type: application/json\r\n${extra}\r\n`);
}

const DEEP = Buffer.from('['.repeat(100_000));
const MEMBERS = Buffer.from(`{${'"":0,'.repeat(199_999)}"":0}`);

interface Outcome {
  status: string;
  bytesSent: number;
}

/** One attack request on a fresh verified connection: what Nexus answered (or how the connection ended). */
export function attack(kind: Kind, port: number, opts: tls.ConnectionOptions, stopAt: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = '';
    let sent = 0;
    let done = false;
    const sock = tls.connect({ host: '127.0.0.1', port, ...opts });
    const finish = (why: string): void => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ status: status || why, bytesSent: sent });
    };
    const guard = setTimeout(() => finish('no answer in 30 s'), 30_000);
    guard.unref();
    sock.on('data', (d: Buffer) => {
      if (status === '') {
        const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'));
        status = m ? m[1]! : 'garbage';
        // Keep sending the bomb a moment longer (Nexus lingers, reading and discarding), then go.
        setTimeout(() => finish(status), kind === 'declared-64MiB' || kind === 'chunked-endless' ? 500 : 0).unref();
      }
    });
    sock.on('error', () => finish('connection error'));
    sock.on('close', () => { clearTimeout(guard); finish('closed without an answer'); });
    const pump = (): void => {
      while (!done && Date.now() < stopAt && sent < 64 * 1024 * 1024) {
        const piece = kind === 'chunked-endless' ? Buffer.concat([Buffer.from('10000\r\n'), CHUNK, Buffer.from('\r\n')]) : CHUNK;
        sent += piece.length;
        if (!sock.write(piece)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.once('secureConnect', () => {
      if (kind === 'declared-64MiB') {
        sock.write(head(`Content-Length: ${64 * 1024 * 1024}\r\n`));
        pump();
      } else if (kind === 'chunked-endless') {
        sock.write(head('Transfer-Encoding: chunked\r\n'));
        pump();
      } else {
        const body = kind === 'deep-100k' ? DEEP : MEMBERS;
        sock.write(Buffer.concat([head(`Content-Length: ${body.length}\r\n`), body]));
        sent = body.length;
      }
    });
  });
}


interface BomberData {
  port: number;
  cert: string;
  key: string;
  ca: string[];
  seconds: number;
  clients: number;
}

async function main(): Promise<void> {
  const d = workerData as BomberData;
  const opts: tls.ConnectionOptions = {
    minVersion: 'TLSv1.3', cert: d.cert, key: d.key, ca: d.ca,
    checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${NEXUS_ID}` ? undefined : new Error('not Nexus')),
  };
  const stopAt = Date.now() + d.seconds * 1000;
  const outcomes: Record<string, number> = {};
  let attacks = 0;
  let bytes = 0;
  await Promise.all(Array.from({ length: d.clients }, async (_, i) => {
    const kind = KINDS[i % KINDS.length]!;
    while (Date.now() < stopAt) {
      const o = await attack(kind, d.port, opts, stopAt);
      attacks++;
      bytes += o.bytesSent;
      const k = `${kind} ${o.status}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
  }));
  parentPort!.postMessage({ outcomes, attacks, bytes });
}

await main();
