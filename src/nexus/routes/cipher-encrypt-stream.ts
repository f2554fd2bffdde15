/**
 * Stream encrypt (`POST /v1/cipher/encrypt`, `application/octet-stream`): raw plaintext in,
 * SPIKE's framing `version(1) ‖ nonce(12) ‖ ct ‖ tag(16)` out. See cipher.ts for the formats,
 * limits and error codes.
 *
 * Both directions stream: each request chunk goes through `createCipheriv` and out (zeroed, and
 * its memory freed, as soon as it is encrypted; the reply frees the ciphertext once written:
 * `wipeAndFree`), the tag is appended at the end — bounded memory whatever the size.
 * The header waits for the first body chunk, so a body too slow from the start still gets its
 * 408 answer (FI-08). The request holds {@link ENCRYPT_STREAM_RESERVE_BYTES} of the cipher
 * budget for its chunks in flight, given back when it ends in any way: the reply written out,
 * an error, or the writer stopping early (`return()`, as `releasingIterable` does).
 *
 * Throughput (P5). The body is read up to {@link ENCRYPT_READ_AHEAD_BYTES} ahead of the
 * cipher, so the TLS records of one socket read are encrypted in one turn of the event loop
 * and their ciphertext leaves in one socket write (reply.ts) instead of one write each. The
 * reply is a plain async iterator over the body's (no generator layers in between): one
 * promise per chunk rather than a handful.
 */
import { type CipherGCM, createCipheriv } from 'node:crypto';
import type { StreamContext, StreamReply } from '../../http/index.js';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, systemRandom, wipe, wipeAndFree } from '../../crypto/index.js';
import type { ByteBudget } from './cipher-budget.js';
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
  const chunks = new EncryptedChunks(sctx.body()[Symbol.asyncIterator](), cipher, version, nonce, o.count, () => held.release());
  return {
    kind: 'stream',
    chunks,
    ...(sctx.declaredLength !== undefined ? { length: sctx.declaredLength + STREAM_OVERHEAD_BYTES } : {}),
  };
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The reply: the header with the first chunk's ciphertext, each further chunk's ciphertext
 * (plaintext zeroed once encrypted), then the final block and the tag (the header too if the
 * body was empty). `release` runs once, when the reply ends in any way.
 */
class EncryptedChunks implements AsyncIterableIterator<Uint8Array> {
  readonly #body: AsyncIterator<Buffer>;
  readonly #cipher: CipherGCM;
  readonly #head: Uint8Array;
  readonly #count: (direction: 'in' | 'out', n: number) => void;
  readonly #release: () => void;
  #headSent = false;
  #done = false;

  constructor(body: AsyncIterator<Buffer>, cipher: CipherGCM, version: number, nonce: Uint8Array, count: StreamEncryptOptions['count'], release: () => void) {
    this.#body = body;
    this.#cipher = cipher;
    this.#head = new Uint8Array(STREAM_HEADER_BYTES);
    this.#head[0] = version;
    this.#head.set(nonce, 1);
    this.#count = count;
    this.#release = release;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return DONE;
    let r: IteratorResult<Buffer>;
    try {
      r = await this.#body.next();
    } catch (e) {
      this.#finish();
      throw e;
    }
    if (r.done === true) return this.#done ? DONE : { done: false, value: this.#tail() };
    if (this.#done) {
      wipeAndFree(r.value); // return() ran meanwhile
      return DONE;
    }
    const chunk = r.value;
    this.#count('in', chunk.length);
    let out: Uint8Array = this.#cipher.update(chunk);
    wipeAndFree(chunk);
    if (!this.#headSent) {
      this.#headSent = true;
      const first = out;
      out = Buffer.concat([this.#head, first]);
      wipeAndFree(first);
    }
    this.#count('out', out.length);
    return { done: false, value: out };
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    try {
      await this.#body.return?.();
    } finally {
      this.#finish();
    }
    return DONE;
  }

  /** The last piece (final block and tag); the iteration ends after it. */
  #tail(): Buffer {
    const c = this.#cipher;
    const tail = Buffer.concat(this.#headSent ? [c.final(), c.getAuthTag()] : [this.#head, c.final(), c.getAuthTag()]);
    this.#finish();
    this.#count('out', tail.length);
    return tail;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
  }
}
