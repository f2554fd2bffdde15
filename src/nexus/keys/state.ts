/**
 * Nexus's in-memory key state: the root key once rebuilt, the `threshold` verified shares
 * it was rebuilt from (the basis for computing any Keeper's share by interpolation, D5),
 * the public sharing parameters, and the purpose keys derived from the root (D7).
 *
 * Secrets: the root key, the basis share values and every derived key. They live only
 * here, are never serialised, and are zeroed by `clear()` (process shutdown) or when a
 * new key replaces them (which only happens through `install`, refused while a key is
 * held: SPIKE's restore replaced a healthy key, gap A1).
 */
import {
  Aead, Commitments, derivePurposeKey, interpolateShare, RootKey, wipe, wipeShare, type Share,
} from '../../crypto/index.js';
import { SpikeError, outsideRequest } from '../../lib/index.js';

/** Public description of the current sharing, stored beside the key-check record. */
export interface SharingInfo {
  epoch: number;
  threshold: number;
  shares: number;
  commitments: Commitments;
  /** The Keeper URLs by position (id = index + 1) this sharing was pushed to; absent in records written before sharing moves. */
  peers?: readonly string[];
}

class KeyStateError extends SpikeError {
  constructor(code: 'key_already_installed' | 'key_not_installed') {
    super(code, code === 'key_already_installed' ? 'a root key is already installed' : 'no root key is installed yet');
  }
}

/** Key ids inside AEAD envelopes (D8): bump when a purpose key rotates. */
const CIPHER_KEY_ID = 1;

/** AES-256-GCM under the root key's `cipher/v1` purpose key; the derived bytes are wiped. */
function cipherFor(root: RootKey): Aead {
  const key = derivePurposeKey(root, 'cipher/v1');
  try {
    return new Aead(key, CIPHER_KEY_ID);
  } finally {
    wipe(key);
  }
}

export class KeyState {
  #root: RootKey | undefined;
  #basis: Share[] = [];
  #sharing: SharingInfo | undefined;
  #cipher: Aead | undefined;
  readonly #listeners = new Set<() => void>();

  isReady(): boolean {
    return this.#root !== undefined;
  }

  sharing(): SharingInfo | undefined {
    return this.#sharing;
  }

  /** The root key (owned by this object; never wipe it from outside). */
  root(): RootKey {
    if (!this.#root) throw new KeyStateError('key_not_installed');
    return this.#root;
  }

  /** AES-256-GCM under the `cipher/v1` purpose key (encryption as a service). */
  cipher(): Aead {
    if (!this.#cipher) throw new KeyStateError('key_not_installed');
    return this.#cipher;
  }

  /** The `bootstrap-verify/v1` purpose key (Bootstrap's probe only); a copy the caller wipes. */
  verifyKey(): Uint8Array {
    return derivePurposeKey(this.root(), 'bootstrap-verify/v1');
  }

  /**
   * Takes ownership of `root` and copies of `basis` (exactly `threshold` verified shares
   * of `sharing`). Refused when a key is already installed.
   */
  install(root: RootKey, basis: readonly Share[], sharing: SharingInfo): void {
    if (this.#root) throw new KeyStateError('key_already_installed');
    this.#root = root;
    this.#basis = basis.slice(0, sharing.threshold).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) }));
    this.#sharing = sharing;
    this.#cipher = cipherFor(root);
    for (const l of [...this.#listeners]) l(); // a copy: one added meanwhile has run already
  }

  /**
   * A sharing move's switch (same root key, new sharing): takes copies of `basis`
   * (`threshold` verified shares of `sharing`) and wipes the old basis. The caller has
   * already committed `sharing` in the store.
   */
  replaceSharing(basis: readonly Share[], sharing: SharingInfo): void {
    if (!this.#root) throw new KeyStateError('key_not_installed');
    const next = basis.slice(0, sharing.threshold).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) }));
    for (const s of this.#basis) wipeShare(s);
    this.#basis = next;
    this.#sharing = sharing;
  }

  /**
   * A root-key rotation's switch (keys/rotation.ts): takes ownership of `root`, copies of
   * `basis` (`threshold` shares of `sharing`), wipes the old key, basis and cipher key. The
   * caller has already switched the store to `root` and recorded `sharing`.
   */
  replaceRoot(root: RootKey, basis: readonly Share[], sharing: SharingInfo): void {
    if (!this.#root) throw new KeyStateError('key_not_installed');
    const next = basis.slice(0, sharing.threshold).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) }));
    this.#root.destroy();
    for (const s of this.#basis) wipeShare(s);
    this.#cipher?.destroy();
    this.#root = root;
    this.#basis = next;
    this.#sharing = sharing;
    this.#cipher = cipherFor(root);
  }

  /**
   * Memory backend only (SPIKE: no root key, no Keepers): a random per-process key so the
   * cipher API works. There is no sharing, so recover/restore stay unavailable.
   */
  installEphemeral(): void {
    if (this.#root) throw new KeyStateError('key_already_installed');
    const root = RootKey.generate();
    this.#root = root;
    this.#cipher = cipherFor(root);
  }

  /**
   * Calls `fn` once a key is installed (immediately if it already is), and again at every later
   * install (after {@link clear}) — outside any request deadline: what runs then (policy load,
   * Keeper sync) outlives the request that installed it.
   */
  onReady(fn: () => void): void {
    const run = (): void => outsideRequest(fn);
    this.#listeners.add(run);
    if (this.#root) run();
  }

  /** The share with id `id` of the current sharing, computed from the basis (caller wipes). */
  shareFor(id: number): Share {
    if (!this.#root || !this.#sharing) throw new KeyStateError('key_not_installed');
    const held = this.#basis.find((s) => s.id === id);
    if (held) return { id, value: Uint8Array.from(held.value) };
    return interpolateShare(this.#basis, this.#sharing.threshold, id);
  }

  /**
   * Zeroes and forgets the key, its basis and every derived key: at shutdown, and when another
   * process rotated the root key (src/nexus/rejoin.ts) so that recovery can install the new one.
   */
  clear(): void {
    this.#root?.destroy();
    this.#root = undefined;
    for (const s of this.#basis) wipeShare(s);
    this.#basis = [];
    this.#cipher?.destroy();
    this.#cipher = undefined;
    this.#sharing = undefined;
  }
}
