/**
 * The P1/P7 baseline server: a bare Node `https` mTLS server (TLS 1.3, client certificate
 * required and verified against the trust bundle) that answers every request with fixed
 * bytes — the exact JSON body and headers Nexus returned for the same GET. It parses the
 * request body as JSON, as Nexus does, but does no routing, authorisation or storage.
 * `POST /stream` instead pipes the request body back (the transport ceiling for P5).
 *
 * `--sealed <dir> <path> <values JSON>` (rows `p1.cpu.c32.vs_sealed_read`,
 * `p2.cpu.c64.vs_sealed_write`): a GET also reads its record, any other request writes one,
 * doing only the work a sealed store cannot skip (bench/sealed-echo-store.ts), in `<dir>`;
 * `<path>` is a secret holding those values from the start. Only that mode loads the store's
 * code: the plain echo stays a bare server.
 *
 * Run as a child process by `bench/stack-bench.ts`: credentials arrive on stdin as four
 * length-prefixed frames (certificate chain PEM, private key PEM, CA PEM, reply body) plus
 * one frame of reply headers (JSON), so no key touches the disk or the environment. Prints
 * `echo ready <port>` on stdout once listening.
 */
import https from 'node:https';

function readFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  const [cert, key, ca, body, hdrs] = readFrames(all);
  if (!cert || !key || !ca || !body || !hdrs) throw new Error('echo-server: bad input');
  const headers = JSON.parse(hdrs.toString('utf8')) as Record<string, string>;
  const reply = Buffer.from(body);
  const sealedAt = process.argv.indexOf('--sealed');
  const sealed = sealedAt < 0 ? undefined
    : await (await import('./sealed-echo-store.js')).openSealedEchoStore(process.argv[sealedAt + 1] ?? '', process.argv[sealedAt + 2] ?? '', JSON.parse(process.argv[sealedAt + 3] ?? '{}') as Record<string, string>);
  const srv = https.createServer({
    cert, key, ca,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', keepAliveTimeout: 30_000,
  }, (req, res) => {
    if (req.url === '/stream') {
      // P5 transport ceiling: the request body streamed straight back, no crypto of its own.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const answer = (): void => {
        res.writeHead(200, { ...headers, 'Content-Length': reply.length });
        res.end(reply);
      };
      let request: unknown;
      try {
        request = JSON.parse(Buffer.concat(parts).toString('utf8'));
        // --sealed: a GET reads its record, any other request writes one (see sealed-echo-store.ts).
        if (sealed !== undefined && req.url?.endsWith('?action=get') === true) sealed.read(request);
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (sealed === undefined || req.url?.endsWith('?action=get') === true) answer();
      else sealed.write(request).then(answer, () => res.writeHead(400).end());
    });
  });
  all.fill(0); // the key frame lives in `all`; the TLS context holds its own copy now
  srv.listen(0, '127.0.0.1', () => {
    const addr = srv.address();
    process.stdout.write(`echo ready ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`echo-server failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
  process.exit(1);
});
