/**
 * Sources of the current X.509-SVID and trust bundles (go-spiffe `x509svid.Source`,
 * `x509bundle.Source`, `workloadapi.X509Source`). TLS factories take an {@link X509Source}
 * and re-read it on every 'update', so rotation needs no restart. {@link StaticX509Source}
 * holds fixed values (tests call `update` to simulate rotation).
 */
import { EventEmitter } from 'node:events';
import { SpikeError } from '../lib/index.js';
import type { X509Bundle, X509BundleSet, X509BundleSource } from './bundle.js';
import type { TrustDomain } from './id.js';
import type { X509Svid } from './svid.js';

export interface X509SvidSource {
  getX509Svid(): X509Svid;
}

export interface X509Source extends X509SvidSource, X509BundleSource {
  /** All current bundles (for building TLS 'ca' lists). */
  bundleSet(): X509BundleSet;
  on(event: 'update', listener: () => void): this;
  off(event: 'update', listener: () => void): this;
  close(): void;
}

/** The source was closed; it hands out nothing any more. */
export class SourceClosedError extends SpikeError {
  constructor() {
    super('source_closed', 'X.509 source is closed');
  }
}

/** A source with fixed values that changes only when `update` is called. */
export class StaticX509Source extends EventEmitter implements X509Source {
  #svid: X509Svid;
  #bundles: X509BundleSet;
  #closed = false;

  constructor(svid: X509Svid, bundles: X509BundleSet) {
    super();
    this.#svid = svid;
    this.#bundles = bundles;
  }

  getX509Svid(): X509Svid {
    if (this.#closed) throw new SourceClosedError();
    return this.#svid;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    if (this.#closed) throw new SourceClosedError();
    return this.#bundles.get(td);
  }

  bundleSet(): X509BundleSet {
    if (this.#closed) throw new SourceClosedError();
    return this.#bundles;
  }

  /** Replaces the SVID and bundles, then emits 'update'. */
  update(svid: X509Svid, bundles: X509BundleSet): void {
    if (this.#closed) throw new SourceClosedError();
    this.#svid = svid;
    this.#bundles = bundles;
    this.emit('update');
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit('close');
    this.removeAllListeners();
  }
}
