/**
 * What the mTLS server and dialer share (D14): every default in one place, the TLS settings
 * of both sides, and secure contexts built from an X.509 source without turning the private
 * key into a JS string (../pem.ts).
 */
import tls, { type SecureContextOptions } from 'node:tls';
import { constants as cryptoConstants } from 'node:crypto';
import type { X509Source } from '../source.js';
import { svidChainPem, svidPrivateKeyPem } from '../svid.js';

/** Every default in one place. */
export const MTLS_DEFAULTS = Object.freeze({
  /** Verified connections at once. */
  maxConnections: 1024,
  /**
   * Sockets still in the TLS handshake at once, in all (a Keeper: 256, src/config/components.ts);
   * one source network holds at most half, and newcomers from it push out its sockets a second
   * old past `maxHandshakesPerSource` (admission.ts).
   */
  maxHandshakes: 1024,
  maxHandshakesPerSource: 32,
  handshakeTimeoutMs: 5_000,
  /**
   * Handshake pacing (handshake-gate.ts): handshakes running at once (0 = off, the default: see
   * that module for why), the longest one holds its slot, the longest a socket waits for one
   * (below the 1 s from which the admission budgets may evict a network's handshaking socket).
   */
  handshakeSlots: 0,
  handshakeLeaseMs: 5,
  handshakeWaitMs: 500,
  /** Every connection re-handshakes after this (well below a typical SVID lifetime of 1 h). */
  maxConnectionAgeMs: 10 * 60_000,
  /** A socket with no byte read or written for this long is closed (clients that stop reading). */
  inactivityTimeoutMs: 30_000,
  /** How often connections are re-checked between requests (expiry, age). */
  sweepIntervalMs: 1_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  closeGraceMs: 2_000,
  /**
   * On close, idle keep-alive connections stay open this long: a request a client wrote before it
   * could know is read and answered (with `Connection: close`) instead of meeting a closed socket.
   */
  closeDrainMs: 100,
  clientConnections: 10,
  /** TLS handshakes in flight from one process to one server address (dial-gate.ts). */
  clientHandshakesPerTarget: 8,
  clientConnectTimeoutMs: 10_000,
  clientKeepAliveTimeoutMs: 4_000,
  clientHeadersTimeoutMs: 30_000,
  clientBodyTimeoutMs: 30_000,
  /** Longest peer chain we walk (leaf + intermediates + anchor). */
  maxChainLength: 16,
});

/**
 * TLS settings shared by both sides. TLS 1.3 only (TLS-20/24: no 1.2 hello, so no
 * renegotiation); security level 2 refuses RSA < 2048, curves < 224 bits and SHA-1 signatures.
 * `SSL_OP_NO_TICKET` and the absence of `newSession`/`resumeSession` handlers mean no session
 * is ever resumed (TLS-18/19): resumption would skip the peer check against the current bundle.
 */
export const TLS_BASE = Object.freeze({
  minVersion: 'TLSv1.3',
  ciphers: `${tls.DEFAULT_CIPHERS}:@SECLEVEL=2`,
  secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
} satisfies SecureContextOptions);

/**
 * Secure-context options for the source's current SVID and bundles. The key PEM buffer is
 * returned separately so the caller can zero it once OpenSSL has copied it.
 */
export function contextOptions(source: X509Source): { options: SecureContextOptions; keyPem: Buffer } {
  const svid = source.getX509Svid();
  const cert = svidChainPem(svid);
  const ca = source.bundleSet().allAuthorities().map((c) => c.toString());
  const keyPem = svidPrivateKeyPem(svid);
  // `ca: []` (no bundles yet) trusts nothing: Node adds the system roots only when `ca` is absent.
  return { options: { ...TLS_BASE, cert, key: keyPem, ca }, keyPem };
}

/**
 * Builds Node's process-wide root certificate store now, so that the first secure context
 * with a `ca` list does not. Node 20 parses its ~140 bundled root certificates the first
 * time any context is given a `ca` (it only compares the context's store with the root store,
 * whose first use builds it), although such a context trusts its `ca` list alone: 20–40 ms of
 * a CLI call's CPU. A short-lived client calls this while it waits for I/O anyway (the
 * Workload API's answer), so that time overlaps the wait. It changes nothing that is trusted:
 * the throwaway context made here is never used, and every context this module builds still
 * trusts exactly its bundle authorities. Never throws (it is an optimization only).
 */
export function warmTrustStore(): void {
  try {
    const anchor = tls.rootCertificates[0];
    if (anchor !== undefined) tls.createSecureContext({ ca: [anchor] });
  } catch {
    /* the real context will build the store itself */
  }
}

export function secureContextFor(source: X509Source): tls.SecureContext {
  const { options, keyPem } = contextOptions(source);
  try {
    return tls.createSecureContext(options);
  } finally {
    keyPem.fill(0);
  }
}
