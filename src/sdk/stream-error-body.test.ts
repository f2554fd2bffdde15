/**
 * attack-stream-error-drip: a cipher stream refused by a hostile or broken Nexus whose error
 * body drips one byte at a time, each inside the body timeout, held the call for hours (4 KiB
 * at one byte a minute). The error body is now read under the headers' deadline: the call
 * ends with the status's error soon after. Real mTLS server.
 */
import 'reflect-metadata';
import { Readable } from 'node:stream';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MtlsServer } from '../spiffe/tls/index.js';
import { StaticX509Source } from '../spiffe/source.js';
import { bundleSetOf, createCa, makeSvid } from '../../test/helpers/pki.js';
import { fakeNexus } from '../../test/helpers/mtls-harness.js';
import { NexusClient } from './client.js';
import { NexusApiError } from './errors.js';

const TD = 'td1.test';
let server: MtlsServer | undefined;
let client: NexusClient | undefined;
const timers = new Set<NodeJS.Timeout>();
after(async () => {
  for (const t of timers) clearInterval(t);
  await client?.close();
  await server?.close();
});

test('attack-stream-error-drip: a refused stream whose error body drips ends within the headers\' deadline with the status\'s error', async () => {
  const ca = await createCa(TD);
  server = await fakeNexus(ca, (req, res) => {
    req.resume();
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': '4000' });
    const t = setInterval(() => res.write(' '), 100); // each byte well inside the body timeout
    timers.add(t);
    res.on('close', () => clearInterval(t));
  });
  client = await NexusClient.connect({
    urls: [`https://127.0.0.1:${server.port}`],
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca)),
    env: { SPIKE_TRUST_ROOT_NEXUS: TD },
    timeoutMs: 1_500, // the stream's headers deadline
  });
  const started = performance.now();
  await assert.rejects(client.encryptStream(Readable.from([Buffer.from('abc')])), (e: unknown) => e instanceof NexusApiError && e.status === 400);
  const took = performance.now() - started;
  assert.ok(took < 30_000, `ended after ${Math.round(took)} ms (400 s at this drip before)`);
});
