/**
 * The stream encrypt's chunk handling, without a server: SPIKE's framing out, and every body
 * chunk zeroed and its memory freed as soon as it is encrypted (the body reader hands its
 * chunks over; a stream that keeps them for V8 to collect runs a full collection every ~32 MiB).
 */
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/log.js';
import { SpiffeId } from '../../spiffe/id.js';
import type { StreamContext, StreamReply } from '../../http/index.js';
import { ByteBudget } from './cipher-budget.js';
import { ENCRYPT_STREAM_RESERVE_BYTES, STREAM_HEADER_BYTES, streamEncrypt } from './cipher-encrypt-stream.js';

const KEY = randomBytes(32);
const AAD = Buffer.from('aad of version 1');

function context(chunks: Buffer[]): StreamContext {
  return {
    peer: SpiffeId.parse('spiffe://spike.ist/app/x'),
    log: createLogger({ component: 'encrypt-stream-test', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    declaredLength: chunks.reduce((n, c) => n + c.length, 0),
    readBody: () => Promise.reject(new Error('not used')),
    async *body() {
      for (const c of chunks) yield c;
    },
  };
}

test('stream encrypt: framing out, each body chunk zeroed and freed once encrypted, the budget given back', async () => {
  const sizes = [16 * 1024, 64 * 1024, 5000];
  const plain = sizes.map((n) => randomBytes(n));
  const given = plain.map((p) => {
    const b = Buffer.allocUnsafeSlow(p.length);
    p.copy(b);
    return b;
  });
  const budget = new ByteBudget(1024 * 1024);
  const reply = (await streamEncrypt(context(given), {
    budget,
    key: () => Promise.resolve({ version: 1, key: Uint8Array.from(KEY) }),
    aad: () => AAD,
    count: () => undefined,
  })) as StreamReply;
  assert.equal(budget.used, ENCRYPT_STREAM_RESERVE_BYTES);
  const out: Buffer[] = [];
  for await (const c of reply.chunks) out.push(Buffer.from(c)); // a copy: the router frees the chunk once written
  const all = Buffer.concat(out);
  assert.equal(all.length, reply.length);
  for (const g of given) assert.equal(g.byteLength, 0, 'the body chunk was freed after encryption');
  assert.equal(budget.used, 0);

  assert.equal(all[0], 1);
  const d = createDecipheriv('aes-256-gcm', KEY, all.subarray(1, STREAM_HEADER_BYTES), { authTagLength: 16 });
  d.setAAD(AAD);
  d.setAuthTag(all.subarray(all.length - 16));
  const back = Buffer.concat([d.update(all.subarray(STREAM_HEADER_BYTES, all.length - 16)), d.final()]);
  assert.deepEqual(back, Buffer.concat(plain));
});
