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
import { certificatesPem, pemBufferFromDer } from './pem.js';
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
  return certificatesPem(svid.certificates);
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
