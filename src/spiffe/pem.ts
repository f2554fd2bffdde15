/**
 * PEM armour for the SPIFFE layer, written once: DER bytes to PEM straight into a Buffer (so
 * a private key never becomes an immutable, unzeroable JS string), the DER of the blocks of a
 * PEM text, and a certificate list as PEM text. Node's TLS takes keys only as PEM, and
 * `KeyObject.export({ format: 'pem' })` returns a string; that is why the encoder exists.
 */
import type { X509Certificate } from 'node:crypto';

/** The block labels this project writes or reads. */
type PemLabel = 'PRIVATE KEY' | 'CERTIFICATE';

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const PAD = 0x3d; // '='
const NEWLINE = 0x0a;

/**
 * PEM-armours DER bytes straight into a Buffer (base64, 64-column lines, `\n` line ends)
 * without creating a JS string. The caller zeroes the result when it holds a key.
 */
export function pemBufferFromDer(label: PemLabel, der: Uint8Array): Buffer {
  const head = Buffer.from(`-----BEGIN ${label}-----\n`);
  const tail = Buffer.from(`-----END ${label}-----\n`);
  const b64Len = Math.ceil(der.length / 3) * 4;
  const lines = Math.ceil(b64Len / 64);
  const out = Buffer.alloc(head.length + b64Len + lines + tail.length);
  let offset = head.copy(out, 0);
  let column = 0;
  const put = (byte: number): void => {
    out[offset++] = byte;
    if (++column === 64) {
      out[offset++] = NEWLINE;
      column = 0;
    }
  };
  for (let i = 0; i < der.length; i += 3) {
    const b0 = der[i] as number;
    const b1 = i + 1 < der.length ? (der[i + 1] as number) : 0;
    const b2 = i + 2 < der.length ? (der[i + 2] as number) : 0;
    put(B64[b0 >> 2] as number);
    put(B64[((b0 & 3) << 4) | (b1 >> 4)] as number);
    put(i + 1 < der.length ? (B64[((b1 & 15) << 2) | (b2 >> 6)] as number) : PAD);
    put(i + 2 < der.length ? (B64[b2 & 63] as number) : PAD);
  }
  if (column !== 0) out[offset++] = NEWLINE;
  offset += tail.copy(out, offset);
  return out.subarray(0, offset);
}

/** The DER bytes of every `label` block of a PEM text, in order; other text is ignored. */
export function pemBlocks(pem: string, label: PemLabel): Buffer[] {
  const out: Buffer[] = [];
  const block = new RegExp(`-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)-----END ${label}-----`, 'g');
  for (const match of pem.matchAll(block)) {
    out.push(Buffer.from((match[1] ?? '').replace(/[\r\n]/g, ''), 'base64'));
  }
  return out;
}

/** Certificates as PEM text, one block each, in order (e.g. a TLS `cert` chain). */
export function certificatesPem(certificates: readonly X509Certificate[]): string {
  return certificates.map((c) => c.toString()).join('');
}
