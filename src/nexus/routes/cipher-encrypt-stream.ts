/**
 * Stream encrypt (`POST /v1/cipher/encrypt`, `application/octet-stream`): raw plaintext in,
 * SPIKE's framing `version(1) ‖ nonce(12) ‖ ct ‖ tag(16)` out. See cipher.ts for the formats,
 * limits and error codes.
 *
 * Both directions stream: each request chunk goes through `createCipheriv` and out (zeroed as
 * soon as it is encrypted), the tag is appended at the end — bounded memory whatever the size.
 * The header waits for the first body chunk, so a body too slow from the start still gets its
 * 408 answer (FI-08). The request holds {@link ENCRYPT_STREAM_RESERVE_BYTES} of the cipher
 * budget for its chunks in flight, given back when it ends in any way (`releasingIterable`).
 *
 * Throughput (P5). The body is read up to {@link ENCRYPT_READ_AHEAD_BYTES} ahead of the
 * cipher, so the TLS records of one socket read are encrypted in one turn of the event loop
 * and their ciphertext leaves in one socket write (reply.ts) instead of one write each.
 */
import { createCipheriv } from 'node:crypto';
import type { StreamContext, StreamReply } from '../../http/index.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, systemRandom, wipe } from '../../crypto/index.js';
import type { ByteBudget } from './cipher-budget.js';
import { releasingIterable } from './cipher-budget.js';
import { DECRYPT_CHUNK_BYTES } from './cipher-stream.js';

/** Stream framing: version byte + nonce before the ciphertext, tag after it. */
export const STREAM_HEADER_BYTES = 1 + AEAD_NONCE_BYTES;
export const STREAM_OVERHEAD_BYTES = STREAM_HEADER_BYTES + AEAD_TAG_BYTES;
/**
 * Budget held by one stream encrypt: its chunks in flight (the body read ahead, the chunks
 * being encrypted, their output, the reply's write buffer), each at most about 64 KiB.
 */
export const ENCRYPT_STREAM_RESERVE_BYTES = 4 * DECRYPT_CHUNK_BYTES;
/** How far the body is read ahead of the cipher (part of {@link ENCRYPT_STREAM_RESERVE_BYTES}). */
export const ENCRYPT_READ_AHEAD_BYTES = 64 * 1024;

export interface StreamEncryptOptions {
  budget: ByteBudget;
  /** The current version and a copy of its key (wiped here), or throws the error to answer. */
  key(): Promise<{ version: number; key: Uint8Array }>;
  /** GCM associated data of `version`. */
  aad(version: number): Uint8Array;
  /** Counts bytes in and out (metrics). */
  count(direction: 'in' | 'out', n: number): void;
}

/** Handles one stream encrypt (see the module comment). */
export async function streamEncrypt(sctx: StreamContext, o: StreamEncryptOptions): Promise<StreamReply> {
  const held = o.budget.reserve(ENCRYPT_STREAM_RESERVE_BYTES, sctx.peer.toString());
  const nonce = systemRandom(AEAD_NONCE_BYTES);
  let c;
  let version = 0;
  try {
    const got = await o.key();
    version = got.version;
    try {
      c = createCipheriv('aes-256-gcm', got.key, nonce, { authTagLength: AEAD_TAG_BYTES });
    } finally {
      wipe(got.key);
    }
  } catch (e) {
    held.release();
    throw e;
  }
  c.setAAD(o.aad(version));
  const cipher = c;
  const count = o.count;
  const head = new Uint8Array(STREAM_HEADER_BYTES);
  head[0] = version;
  head.set(nonce, 1);
  const body = sctx.body();
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let headSent = false;
    for await (const chunk of body) {
      count('in', chunk.length);
      const out = cipher.update(chunk);
      chunk.fill(0);
      if (!headSent) {
        headSent = true;
        count('out', head.length);
        yield head;
      }
      if (out.length > 0) {
        count('out', out.length);
        yield out;
      }
    }
    const fin = cipher.final();
    const tail = Buffer.concat(headSent ? [fin, cipher.getAuthTag()] : [head, fin, cipher.getAuthTag()]);
    count('out', tail.length);
    yield tail;
  }
  return {
    kind: 'stream',
    chunks: releasingIterable(chunks(), () => held.release()),
    ...(sctx.declaredLength !== undefined ? { length: sctx.declaredLength + STREAM_OVERHEAD_BYTES } : {}),
  };
}
