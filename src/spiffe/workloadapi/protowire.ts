/**
 * A strict, bounded reader of the protobuf wire format, enough to decode the two Workload API
 * answers a one-shot client needs (messages.ts) without loading protobufjs (CLI start-up
 * time). It walks fields of one message: varints are at most 10 bytes, lengths must fit in
 * what is left of the buffer, the deprecated group wire types (3, 4) and unknown wire types
 * (6, 7) are rejected, field number 0 is rejected. Unknown fields of a known wire type are
 * skipped, as protobuf requires. Every failure is a {@link ProtoWireError}; nothing here
 * copies or logs the bytes it reads.
 */

/** The wire types protobuf defines and this reader accepts. */
export const WIRE = Object.freeze({ VARINT: 0, I64: 1, LEN: 2, I32: 5 });

/** A malformed protobuf message (the message says what rule broke, never the bytes). */
export class ProtoWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtoWireError';
  }
}

/** One field as read: its number, wire type and, for LEN fields, the bytes (a view, not a copy). */
export type ProtoField =
  | { readonly no: number; readonly wire: 0; readonly value: bigint }
  | { readonly no: number; readonly wire: 2; readonly bytes: Buffer }
  | { readonly no: number; readonly wire: 1 | 5 };

/** Reads a varint at `pos`; returns its value and the position after it. At most 10 bytes. */
export function readVarint(buf: Buffer, pos: number): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= buf.length) throw new ProtoWireError('truncated varint');
    const b = buf[pos + i]!;
    // The 10th byte may only carry the 64th bit.
    if (i === 9 && b > 1) throw new ProtoWireError('varint longer than 64 bits');
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  throw new ProtoWireError('varint longer than 10 bytes');
}

/** Every field of one message, in order. Throws {@link ProtoWireError} on any malformed byte. */
export function* fields(buf: Buffer): Generator<ProtoField> {
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    pos = tag.next;
    const wire = Number(tag.value & 7n);
    const noBig = tag.value >> 3n;
    if (noBig === 0n || noBig > 0x1fffffffn) throw new ProtoWireError('invalid field number');
    const no = Number(noBig);
    if (wire === WIRE.VARINT) {
      const v = readVarint(buf, pos);
      pos = v.next;
      yield { no, wire: 0, value: v.value };
    } else if (wire === WIRE.LEN) {
      const len = readVarint(buf, pos);
      pos = len.next;
      if (len.value > BigInt(buf.length - pos)) throw new ProtoWireError('length exceeds the message');
      const end = pos + Number(len.value);
      yield { no, wire: 2, bytes: buf.subarray(pos, end) };
      pos = end;
    } else if (wire === WIRE.I64 || wire === WIRE.I32) {
      const size = wire === WIRE.I64 ? 8 : 4;
      if (pos + size > buf.length) throw new ProtoWireError('truncated fixed-size field');
      pos += size;
      yield { no, wire };
    } else {
      throw new ProtoWireError(`unsupported wire type ${wire}`);
    }
  }
}

/** The bytes of a LEN field; a known field with another wire type is rejected. */
export function lenBytes(f: ProtoField, what: string): Buffer {
  if (f.wire !== WIRE.LEN) throw new ProtoWireError(`${what} has wire type ${f.wire}, expected ${WIRE.LEN}`);
  return f.bytes;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A LEN field as a UTF-8 string (proto3 strings must be valid UTF-8). */
export function lenString(f: ProtoField, what: string): string {
  try {
    return UTF8.decode(lenBytes(f, what));
  } catch (e) {
    if (e instanceof ProtoWireError) throw e;
    throw new ProtoWireError(`${what} is not valid UTF-8`);
  }
}
