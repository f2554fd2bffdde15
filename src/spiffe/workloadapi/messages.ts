/**
 * Decoders of the two Workload API answers a one-shot client reads (`X509SVIDResponse`,
 * `X509BundlesResponse`) into the same shapes protobufjs gives the watching client (proto.ts),
 * on the strict reader of protowire.ts. Field numbers are the standard's; absent fields get
 * proto3 defaults ('' / empty Buffer), a repeated field collects every occurrence, a singular
 * field keeps the last one, a map keeps the last value of a key. A known field with the wrong
 * wire type, invalid UTF-8 in a string or any malformed byte is a {@link ProtoWireError}.
 *
 * Byte fields are copies, so the caller can zero the received message afterwards; the key
 * field (`x509_svid_key`) is zeroed by the response parser once the key object exists.
 */
import { fields, lenBytes, lenString, ProtoWireError } from './protowire.js';
import type { X509BundlesResponseMessage, X509SvidMessage, X509SvidResponseMessage } from './proto.js';

const copy = (b: Buffer): Buffer => Buffer.from(b);

function decodeSvid(buf: Buffer): X509SvidMessage {
  const m: X509SvidMessage = { spiffe_id: '', x509_svid: Buffer.alloc(0), x509_svid_key: Buffer.alloc(0), bundle: Buffer.alloc(0), hint: '' };
  try {
    for (const f of fields(buf)) {
      switch (f.no) {
        case 1: m.spiffe_id = lenString(f, 'X509SVID.spiffe_id'); break;
        case 2: m.x509_svid = copy(lenBytes(f, 'X509SVID.x509_svid')); break;
        case 3: m.x509_svid_key.fill(0); m.x509_svid_key = copy(lenBytes(f, 'X509SVID.x509_svid_key')); break;
        case 4: m.bundle = copy(lenBytes(f, 'X509SVID.bundle')); break;
        case 5: m.hint = lenString(f, 'X509SVID.hint'); break;
        default: break; // unknown field: skipped
      }
    }
  } catch (e) {
    m.x509_svid_key.fill(0);
    throw e;
  }
  return m;
}

/** One `map<string, bytes>` entry (key = 1, value = 2). */
function decodeMapEntry(buf: Buffer, what: string): [string, Buffer] {
  let key = '';
  let value: Buffer = Buffer.alloc(0);
  for (const f of fields(buf)) {
    if (f.no === 1) key = lenString(f, `${what} key`);
    else if (f.no === 2) value = copy(lenBytes(f, `${what} value`));
  }
  return [key, value];
}

/** Decodes an `X509SVIDResponse`: svids = 1, crl = 2, federated_bundles = 3. */
export function decodeX509SvidResponse(buf: Buffer): X509SvidResponseMessage {
  const out: X509SvidResponseMessage = { svids: [], crl: [], federated_bundles: Object.create(null) as Record<string, Buffer> };
  try {
    for (const f of fields(buf)) {
      if (f.no === 1) out.svids.push(decodeSvid(lenBytes(f, 'X509SVIDResponse.svids')));
      else if (f.no === 2) out.crl.push(copy(lenBytes(f, 'X509SVIDResponse.crl')));
      else if (f.no === 3) {
        const [k, v] = decodeMapEntry(lenBytes(f, 'X509SVIDResponse.federated_bundles'), 'X509SVIDResponse.federated_bundles');
        out.federated_bundles[k] = v;
      }
    }
  } catch (e) {
    for (const s of out.svids) s.x509_svid_key.fill(0);
    throw e;
  }
  return out;
}

/** Decodes an `X509BundlesResponse`: crl = 1, bundles = 2. */
export function decodeX509BundlesResponse(buf: Buffer): X509BundlesResponseMessage {
  const out: X509BundlesResponseMessage = { crl: [], bundles: Object.create(null) as Record<string, Buffer> };
  for (const f of fields(buf)) {
    if (f.no === 1) out.crl.push(copy(lenBytes(f, 'X509BundlesResponse.crl')));
    else if (f.no === 2) {
      const [k, v] = decodeMapEntry(lenBytes(f, 'X509BundlesResponse.bundles'), 'X509BundlesResponse.bundles');
      out.bundles[k] = v;
    }
  }
  return out;
}

export { ProtoWireError };
