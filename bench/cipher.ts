/**
 * P5 — encryption as a service throughput (issue 6): a 64 MiB stream encrypt through Nexus
 * (SDK client → mTLS → `POST /v1/cipher/encrypt`, octet-stream, response drained) against raw
 * `crypto.createCipheriv('aes-256-gcm')` over the same bytes in the same run and the same 64 KiB
 * chunks (goal ≥ 0.7×). Context rows: the streamed decrypt (buffered and verified before any
 * plaintext leaves, see src/nexus/routes/cipher.ts) and small JSON encrypts per second.
 *
 * `benchCipher(stack?)` uses the given stack's Pilot identity, or starts (and stops) its own.
 * Each throughput is the best of a few runs (less noise from other work on the machine).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { Stack } from '../test/helpers/stack.js';
import type { BenchResult } from './types.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const CHUNK = 64 * 1024;

async function drainCount(r: Readable): Promise<number> {
  let n = 0;
  for await (const c of r) n += (c as Buffer).length;
  return n;
}

async function drainAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function rawEncrypt(data: Buffer): number {
  const key = randomBytes(32);
  const t0 = performance.now();
  const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
  let n = 0;
  for (let off = 0; off < data.length; off += CHUNK) n += c.update(data.subarray(off, off + CHUNK)).length;
  n += c.final().length + c.getAuthTag().length;
  const ms = performance.now() - t0;
  key.fill(0);
  if (n !== data.length + 16) throw new Error('raw encrypt size mismatch');
  return ms;
}

const mibPerS = (bytes: number, ms: number): number => Math.round((bytes / MiB / (ms / 1000)) * 10) / 10;

export async function benchCipher(stack?: Stack, o: { quick?: boolean } = {}): Promise<BenchResult[]> {
  const own = stack === undefined;
  const st = stack ?? (await Stack.start());
  try {
    const client = await st.client('pilot');
    const runs = o.quick ? 2 : 4;
    const data = randomBytes(SIZE);

    // Warm-up (TLS session, JIT) with 1 MiB.
    await drainCount(await client.encryptStream(data.subarray(0, MiB)));

    let rawBest = Infinity;
    let nexusBest = Infinity;
    let decBest = Infinity;
    let ct: Buffer | undefined;
    for (let i = 0; i < runs; i++) {
      rawBest = Math.min(rawBest, rawEncrypt(data));
      const t0 = performance.now();
      const n = await drainCount(await client.encryptStream(data));
      nexusBest = Math.min(nexusBest, performance.now() - t0);
      if (n !== SIZE + 29) throw new Error(`stream encrypt returned ${n} bytes`);
    }
    ct = await drainAll(await client.encryptStream(data));
    for (let i = 0; i < Math.max(1, runs - 1); i++) {
      const t0 = performance.now();
      const n = await drainCount(await client.decryptStream(ct));
      decBest = Math.min(decBest, performance.now() - t0);
      if (n !== SIZE) throw new Error(`stream decrypt returned ${n} bytes`);
    }
    ct = undefined;

    // Small JSON encrypts, sequential (latency-bound).
    const small = randomBytes(64);
    const budget = o.quick ? 500 : 2000;
    let ops = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < budget) {
      await client.encrypt(small);
      ops++;
    }
    const jsonOps = Math.round(ops / ((performance.now() - t0) / 1000));

    const raw = mibPerS(SIZE, rawBest);
    const enc = mibPerS(SIZE, nexusBest);
    return [
      {
        id: 'cipher.stream.encrypt.64mib',
        name: 'stream encrypt 64 MiB through Nexus (mTLS, SDK)',
        value: enc,
        unit: 'MiB/s',
        baseline: raw,
        ratio: Math.round((enc / raw) * 1000) / 1000,
        note: `baseline = raw createCipheriv aes-256-gcm, same bytes and 64 KiB chunks, best of ${runs}`,
      },
      {
        id: 'cipher.stream.decrypt.64mib',
        name: 'stream decrypt 64 MiB through Nexus (buffered, tag checked before output)',
        value: mibPerS(SIZE, decBest),
        unit: 'MiB/s',
      },
      { id: 'cipher.json.encrypt.64b.ops', name: 'JSON encrypt 64 B, sequential', value: jsonOps, unit: 'ops/s' },
    ];
  } finally {
    if (own) await st.stop();
  }
}

// `node dist/bench/cipher.js` runs it alone.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  benchCipher(undefined, { quick: process.argv.includes('--quick') }).then(
    (rs) => {
      for (const r of rs) console.log(`${r.id}\t${r.value} ${r.unit}${r.ratio !== undefined ? `\tbaseline ${r.baseline} → ${r.ratio}×` : ''}`);
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
