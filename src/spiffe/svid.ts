/**
 * The process's own X.509-SVID: certificate chain (leaf first) plus private key, as received
 * from the Workload API (go-spiffe `svid/x509svid/svid.go`). Parsing applies go-spiffe's
 * own-SVID rules: the leaf passes the peer leaf rules (one URI SAN that is a SPIFFE ID, not a
 * CA, digitalSignature, no keyCertSign/cRLSign), every signing certificate that follows is a CA
 * with keyCertSign, and the private key matches the leaf's public key.
 */
import { createPrivateKey, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { parseConcatenatedDer } from './bundle.js';
import { certFactsFromNode, KU_KEY_CERT_SIGN } from './certfacts.js';
import type { SpiffeId } from './id.js';
import { leafSpiffeId, SvidVerificationError } from './verify.js';

export interface X509Svid {
  readonly id: SpiffeId;
  /** Leaf first, then intermediates. */
  readonly certificates: readonly X509Certificate[];
  readonly privateKey: KeyObject;
  readonly hint?: string;
  /** The leaf's notAfter. */
  readonly notAfter: Date;
}

function facts(c: X509Certificate) {
  try {
    return certFactsFromNode(c);
  } catch (cause) {
    throw new SvidVerificationError('svid_malformed', { cause });
  }
}

/**
 * Builds an X509Svid from node:crypto certificates (leaf first) and a private key, applying
 * the own-SVID rules. Throws {@link SvidVerificationError}.
 */
export function makeX509Svid(certificates: readonly X509Certificate[], privateKey: KeyObject, hint?: string): X509Svid {
  const leafCert = certificates[0];
  if (!leafCert) throw new SvidVerificationError('svid_empty_chain');
  const leaf = facts(leafCert);
  if (leaf.duplicateExtensions) throw new SvidVerificationError('svid_duplicate_extension');
  const id = leafSpiffeId(leaf);
  for (const c of certificates.slice(1)) {
    const f = facts(c);
    if (!f.isCA) throw new SvidVerificationError('svid_intermediate_not_ca');
    if (f.keyUsage === undefined || (f.keyUsage & KU_KEY_CERT_SIGN) === 0) {
      throw new SvidVerificationError('svid_intermediate_no_key_cert_sign');
    }
  }
  if (privateKey.type !== 'private') throw new SvidVerificationError('svid_key_malformed');
  const fromKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const fromCert = leafCert.publicKey.export({ format: 'der', type: 'spki' });
  if (!fromKey.equals(fromCert)) throw new SvidVerificationError('svid_key_mismatch');
  const svid: X509Svid = {
    id,
    certificates: Object.freeze([...certificates]),
    privateKey,
    notAfter: leaf.notAfter,
    ...(hint !== undefined && hint !== '' ? { hint } : {}),
  };
  return Object.freeze(svid);
}

/**
 * Parses the Workload API encodings: `certsDer` is concatenated DER certificates (leaf
 * first), `pkcs8Der` an unencrypted PKCS#8 DER private key. Neither buffer is kept or
 * modified; the caller may zero `pkcs8Der` afterwards.
 */
export function parseX509Svid(certsDer: Uint8Array, pkcs8Der: Uint8Array, hint?: string): X509Svid {
  let certs: X509Certificate[];
  try {
    certs = parseConcatenatedDer(certsDer);
  } catch (cause) {
    throw new SvidVerificationError('svid_malformed', { cause });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pkcs8Der.buffer, pkcs8Der.byteOffset, pkcs8Der.byteLength), format: 'der', type: 'pkcs8' });
  } catch {
    // no cause: key parsing errors could describe key bytes
    throw new SvidVerificationError('svid_key_malformed');
  }
  return makeX509Svid(certs, key, hint);
}

/** The SVID's chain as DER buffers, leaf first. */
export function svidChainDer(svid: X509Svid): Buffer[] {
  return svid.certificates.map((c) => c.raw);
}

/** The SVID's chain as PEM text (leaf first), e.g. for a TLS `cert` option. */
export function svidChainPem(svid: X509Svid): string {
  return svid.certificates.map((c) => c.toString()).join('');
}

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/**
 * PEM-armours DER bytes straight into a Buffer (base64, 64-column lines) without creating a
 * JS string, so private key material never becomes an immutable, unzeroable string.
 */
export function pemBufferFromDer(label: 'PRIVATE KEY' | 'CERTIFICATE', der: Uint8Array): Buffer {
  const head = Buffer.from(`-----BEGIN ${label}-----\n`);
  const tail = Buffer.from(`-----END ${label}-----\n`);
  const b64Len = Math.ceil(der.length / 3) * 4;
  const lines = Math.ceil(b64Len / 64);
  const out = Buffer.alloc(head.length + b64Len + lines + tail.length);
  let o = head.copy(out, 0);
  let col = 0;
  const put = (c: number): void => {
    out[o++] = c;
    if (++col === 64) {
      out[o++] = 0x0a;
      col = 0;
    }
  };
  for (let i = 0; i < der.length; i += 3) {
    const b0 = der[i] as number;
    const b1 = i + 1 < der.length ? (der[i + 1] as number) : 0;
    const b2 = i + 2 < der.length ? (der[i + 2] as number) : 0;
    put(B64[b0 >> 2] as number);
    put(B64[((b0 & 3) << 4) | (b1 >> 4)] as number);
    put(i + 1 < der.length ? (B64[((b1 & 15) << 2) | (b2 >> 6)] as number) : 0x3d);
    put(i + 2 < der.length ? (B64[b2 & 63] as number) : 0x3d);
  }
  if (col !== 0) out[o++] = 0x0a;
  o += tail.copy(out, o);
  return out.subarray(0, o);
}

/**
 * The SVID's private key as a PKCS#8 PEM Buffer for `tls.createSecureContext({ key })`
 * (Node 20's TLS accepts neither a KeyObject nor DER there). The intermediate DER is zeroed;
 * the caller should `fill(0)` the returned Buffer once the secure context is built.
 */
export function svidPrivateKeyPem(svid: X509Svid): Buffer {
  const der = svid.privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    return pemBufferFromDer('PRIVATE KEY', der);
  } finally {
    der.fill(0);
  }
}
