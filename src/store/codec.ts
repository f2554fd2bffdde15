/**
 * What a persistent backend writes, and how it is sealed (D8/D9). Backend-independent:
 * sqlite and postgres both seal through it (via sealed.ts), so both hold the same blobs.
 *
 * - Record ids: HMAC-SHA-256 under the `path-hmac/v1` key of `"s:" + path` (secrets) or
 *   `"p:" + name` (policies) — fixed, distinct two-character prefixes keep the two
 *   domains apart whatever the path contains.
 * - Every blob is an AES-256-GCM envelope under the keyring's current storage key (key id
 *   1 = the `storage/v1` key until a rotation; keyring.ts) with
 *   AAD = aad(record kind, record id, version, field):
 *     secret path   ("spike/secret", id, 0, "path")     the path, for listing
 *     secret meta   ("spike/secret", id, 0, "meta")     versions, timestamps, deletion marks,
 *                                                       max versions, custom metadata
 *     secret values ("spike/secret", id, v, "values")   one per version
 *     policy body   ("spike/policy", id, 0, "body")     name, patterns, permissions, timestamps
 *   A blob moved to another row, version or field fails to open → StoreError('store_integrity').
 * - Plaintexts are JSON built from `[key, value]` pairs (no object keys, so `__proto__`
 *   is just data); plaintext byte buffers are zeroed after sealing/opening. Decoded
 *   states are checked for internal consistency; anything else is an integrity error.
 *
 * Not covered here: replay of an older, validly sealed blob into its own row (whole-store
 * rollback, STO-03) needs a counter held outside the store.
 */
import { randomFillSync } from 'node:crypto';
import { aad, envelopeKeyId, PathHasher, wipe, type RandomSource } from '../crypto/index.js';
import type { Keyring } from './keyring.js';
import { isConsistentState, stringMapFromPairs, type SecretState, type VersionState } from './model.js';
import { IdMemo, MetaMemo } from './read-memo.js';
import { StoreError, type PolicyRecord } from './types.js';

/** Key id of the storage key derived from the root (`storage/v1`): generation 1 of the keyring. */
export const STORAGE_KEY_ID = 1;

export const KIND_SECRET = 'spike/secret';
const KIND_POLICY = 'spike/policy';

/**
 * A plaintext's UTF-8 bytes, from Node's shared buffer pool when small (`TextEncoder` gives each
 * one an allocation of its own, a measurable share of a PUT); zeroed once sealed (`#sealBytes`).
 */
function utf8Bytes(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * `aad(kind, id, version, field)` from pre-encoded parts: the same bytes (checked against
 * `aad()` in codec.test.ts) without re-encoding the constant kind and field on every record.
 */
const partCache = new Map<string, Uint8Array>();
function stringPart(s: string): Uint8Array {
  let p = partCache.get(s);
  if (p === undefined) {
    p = aad(s);
    partCache.set(s, p);
  }
  return p;
}

export function recordAad(kind: string, id: Uint8Array, version: number, field: string): Uint8Array {
  if (!Number.isSafeInteger(version) || version < 0) return aad(kind, id, version, field);
  const k = stringPart(kind);
  const f = stringPart(field);
  // Public bytes: from Node's shared pool (every byte is written below), not an allocation each.
  const out = Buffer.allocUnsafe(k.length + 5 + id.length + 9 + f.length);
  out.set(k, 0);
  let o = k.length;
  out[o] = 0x02; // bytes part: type, uint32 BE length, bytes
  out.writeUInt32BE(id.length, o + 1);
  out.set(id, o + 5);
  o += 5 + id.length;
  out[o] = 0x03; // number part: type, int64 BE (non-negative here)
  out.writeUInt32BE(Math.floor(version / 0x1_0000_0000), o + 1);
  out.writeUInt32BE(version >>> 0, o + 5);
  out.set(f, o + 9);
  return out;
}

/** Bytes of CSPRNG output fetched at once by {@link NoncePool}. */
const NONCE_POOL_BYTES = 4096;

/**
 * The storage AEAD's nonce source: the system CSPRNG (`randomFillSync`, as `systemRandom`),
 * read 4 KiB at a time and handed out as fresh copies, every byte at most once. A
 * `randomFillSync` call costs about 2.4 µs whatever its length — a quarter of a PUT's store
 * CPU with two seals — while a copy from the pool costs 0.04 µs. Nonces are public (stored
 * in each envelope); the pool is still zeroed when the sealer is destroyed.
 */
export class NoncePool {
  readonly #pool = new Uint8Array(NONCE_POOL_BYTES);
  #offset = NONCE_POOL_BYTES;

  readonly take: RandomSource = (n: number): Uint8Array => {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('bad length');
    if (n > NONCE_POOL_BYTES) return randomFillSync(new Uint8Array(n));
    if (this.#offset + n > NONCE_POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const out = this.#pool.slice(this.#offset, this.#offset + n);
    this.#pool.fill(0, this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  };

  destroy(): void {
    this.#pool.fill(0);
    this.#offset = NONCE_POOL_BYTES;
  }
}

/** Where a sealed blob lives, which names its AAD. */
export interface SealedCell {
  kind: 'secret' | 'policy';
  id: Uint8Array;
  version: number;
  field: 'path' | 'meta' | 'values' | 'body';
}

function isInt(x: unknown, min = 0): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= min;
}

function isPairs(x: unknown): x is [string, string][] {
  return Array.isArray(x) && x.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
}

export class RecordSealer {
  readonly #keyring: Keyring;
  /**
   * Called when a blob names a storage key id newer than any this process holds (another
   * instance on the same database rotated it): the custody reloads the keyring.
   */
  onNewerKey: (() => void) | undefined;
  readonly #hasher: PathHasher;
  readonly #ids: IdMemo;
  readonly #metas = new MetaMemo();

  readonly #nonces: NoncePool | undefined;

  /**
   * Seals with the keyring's current storage generation (inside a reserved block: the store
   * reserves before writing), opens by each envelope's key id; owns `keyring` and `nonces`
   * (the pool the keyring's AEADs draw from, zeroed on destroy).
   */
  constructor(keyring: Keyring, nonces?: NoncePool) {
    this.#keyring = keyring;
    this.#nonces = nonces;
    const hasher = keyring.pathHasher();
    this.#hasher = hasher;
    this.#ids = new IdMemo((input) => hasher.hash(input));
  }

  get keyring(): Keyring {
    return this.#keyring;
  }

  secretId(path: string): Buffer {
    return this.#ids.id(`s:${path}`);
  }

  policyId(name: string): Buffer {
    return this.#ids.id(`p:${name}`);
  }

  // --- generic sealing of JSON / strings -------------------------------------------

  #sealBytes(plain: Uint8Array, ad: Uint8Array): Buffer {
    try {
      return this.#keyring.storage.takeSeal().seal(plain, ad);
    } finally {
      wipe(plain);
    }
  }

  #openBytes(blob: Uint8Array, ad: Uint8Array): Uint8Array {
    const keyId = envelopeKeyId(blob) ?? 0;
    const aead = this.#keyring.storage.aead(keyId);
    if (!aead && this.onNewerKey && keyId > Math.max(0, ...this.#keyring.storage.ids())) {
      // Another instance on the same database rotated the storage key: not damage. The
      // keyring is reloaded in the background; this request is refused as retryable.
      this.onNewerKey();
      throw new StoreError('store_busy');
    }
    try {
      if (!aead) throw new StoreError('store_integrity');
      return aead.open(blob, ad);
    } catch (e) {
      throw new StoreError('store_integrity', { cause: e });
    }
  }

  #sealJson(value: unknown, ad: Uint8Array): Buffer {
    return this.#sealBytes(utf8Bytes(JSON.stringify(value)), ad);
  }

  #openJson(blob: Uint8Array, ad: Uint8Array): unknown {
    const plain = this.#openBytes(blob, ad);
    try {
      return JSON.parse(fromUtf8.decode(plain)) as unknown;
    } catch (e) {
      throw new StoreError('store_integrity', { cause: e });
    } finally {
      wipe(plain);
    }
  }

  #openString(blob: Uint8Array, ad: Uint8Array): string {
    const plain = this.#openBytes(blob, ad);
    try {
      return fromUtf8.decode(plain);
    } catch (e) {
      throw new StoreError('store_integrity', { cause: e });
    } finally {
      wipe(plain);
    }
  }

  // --- secrets ------------------------------------------------------------------------

  sealPath(id: Uint8Array, path: string): Buffer {
    return this.#sealBytes(utf8Bytes(path), recordAad(KIND_SECRET, id, 0, 'path'));
  }

  openPath(id: Uint8Array, blob: Uint8Array): string {
    return this.#openString(blob, recordAad(KIND_SECRET, id, 0, 'path'));
  }

  sealMeta(id: Uint8Array, s: SecretState): Buffer {
    const m = s.meta;
    const vs = [...s.versions.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([v, e]) => [v, e.createdTime.getTime(), e.deletedTime ? e.deletedTime.getTime() : null]);
    const doc: Record<string, unknown> = {
      cur: m.currentVersion,
      old: m.oldestVersion,
      last: m.lastVersion,
      ct: m.createdTime.getTime(),
      ut: m.updatedTime.getTime(),
      max: m.maxVersions,
      vs,
    };
    if (m.customMetadata) doc['cm'] = Object.entries(m.customMetadata);
    const blob = this.#sealJson(doc, recordAad(KIND_SECRET, id, 0, 'meta'));
    this.#metas.remember(id, blob, s);
    return blob;
  }

  /**
   * The state sealed in `blob`, shared and read-only (read-memo.ts): the state decoded from, or
   * sealed into, this exact blob before is handed out again. The planners (model.ts) clone a
   * state before they change anything.
   */
  /** The metadata blob last opened or sealed for `id`, if remembered (read-memo.ts); read-only. */
  knownMeta(id: Uint8Array): Buffer | undefined {
    return this.#metas.blob(id);
  }

  openMeta(id: Uint8Array, blob: Uint8Array): Readonly<SecretState> {
    return this.#metas.open(id, blob, () => this.#decodeMeta(id, blob));
  }

  #decodeMeta(id: Uint8Array, blob: Uint8Array): SecretState {
    const doc = this.#openJson(blob, recordAad(KIND_SECRET, id, 0, 'meta'));
    const bad = (): never => { throw new StoreError('store_integrity'); };
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad();
    const d = doc as Record<string, unknown>;
    const { cur, old, last, ct, ut, max, vs, cm } = d;
    if (!isInt(cur) || !isInt(old) || !isInt(last) || !isInt(ct) || !isInt(ut) || !isInt(max, 1) || !Array.isArray(vs)) bad();
    const versions = new Map<number, VersionState>();
    for (const e of vs as unknown[]) {
      if (!Array.isArray(e) || e.length !== 3) bad();
      const [v, c, del] = e as unknown[];
      if (!isInt(v, 1) || !isInt(c) || !(del === null || isInt(del)) || versions.has(v as number)) bad();
      versions.set(v as number, { createdTime: new Date(c as number), deletedTime: del === null ? null : new Date(del as number) });
    }
    const state: SecretState = {
      meta: {
        currentVersion: cur as number,
        oldestVersion: old as number,
        lastVersion: last as number,
        createdTime: new Date(ct as number),
        updatedTime: new Date(ut as number),
        maxVersions: max as number,
      },
      versions,
    };
    if (cm !== undefined) {
      if (!isPairs(cm)) bad();
      state.meta.customMetadata = stringMapFromPairs(cm as [string, string][]);
    }
    if (!isConsistentState(state)) bad();
    return state;
  }

  sealValues(id: Uint8Array, version: number, values: Record<string, string>): Buffer {
    return this.#sealJson(Object.entries(values), recordAad(KIND_SECRET, id, version, 'values'));
  }

  openValues(id: Uint8Array, version: number, blob: Uint8Array): Record<string, string> {
    const doc = this.#openJson(blob, recordAad(KIND_SECRET, id, version, 'values'));
    if (!isPairs(doc)) throw new StoreError('store_integrity');
    return stringMapFromPairs(doc);
  }

  // --- policies -----------------------------------------------------------------------

  sealPolicyBody(id: Uint8Array, p: PolicyRecord): Buffer {
    const doc = {
      n: p.name,
      s: p.spiffeIdPattern,
      p: p.pathPattern,
      perm: p.permissions,
      ca: p.createdAt.getTime(),
      ua: p.updatedAt.getTime(),
    };
    return this.#sealJson(doc, recordAad(KIND_POLICY, id, 0, 'body'));
  }

  /** The body names its policy; callers check it equals the name they looked up. */
  openPolicyBody(id: Uint8Array, blob: Uint8Array): PolicyRecord {
    const doc = this.#openJson(blob, recordAad(KIND_POLICY, id, 0, 'body'));
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new StoreError('store_integrity');
    const { n, s, p, perm, ca, ua } = doc as Record<string, unknown>;
    if (typeof n !== 'string' || typeof s !== 'string' || typeof p !== 'string' || !isInt(ca) || !isInt(ua)
      || !Array.isArray(perm) || !perm.every((x) => typeof x === 'string')) {
      throw new StoreError('store_integrity');
    }
    return {
      name: n, spiffeIdPattern: s, pathPattern: p, permissions: [...(perm as string[])],
      createdAt: new Date(ca), updatedAt: new Date(ua),
    };
  }

  /**
   * Re-seals one stored blob under the current generation (same AAD), for re-encryption;
   * `where` names the cell: secret path/meta (version 0), secret values (version v), policy body.
   */
  reseal(where: SealedCell, blob: Uint8Array): Buffer {
    const ad = recordAad(where.kind === 'policy' ? KIND_POLICY : KIND_SECRET, where.id, where.version, where.field);
    return this.#sealBytes(this.#openBytes(blob, ad), ad);
  }

  /** Forgets every remembered metadata state (the keyring's generations changed). */
  forgetOpened(): void {
    this.#metas.clear();
  }

  destroy(): void {
    this.#ids.clear();
    this.#metas.clear();
    this.#keyring.destroy();
    this.#hasher.destroy();
    this.#nonces?.destroy();
  }
}
