/**
 * The strict protobuf reader and the Workload API message decoders, as properties: what
 * protobufjs (the dev agent's codec) encodes decodes to the same message; unknown
 * fields are skipped; truncated varints, over-long varints, lengths past the end, group and
 * unknown wire types, field number 0, a known field with the wrong wire type and invalid
 * UTF-8 are rejected; arbitrary bytes never throw anything but ProtoWireError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeX509BundlesResponse, decodeX509SvidResponse } from './messages.js';
import { fields, ProtoWireError, readVarint } from './protowire.js';
import type { X509SvidResponseMessage } from './proto.js';
// The dev agent's grpc-js codecs (protobufjs), the other side of the wire in every test stack.
import { workloadApiDefinitions } from '../../agent/service.js';

function varint(n: bigint): Buffer {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return Buffer.from(out);
}
const tag = (no: number, wire: number): Buffer => varint(BigInt(no) * 8n + BigInt(wire));
const len = (no: number, bytes: Buffer): Buffer => Buffer.concat([tag(no, 2), varint(BigInt(bytes.length)), bytes]);

const bytesArb = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const svidArb = fc.record({
  spiffe_id: fc.string({ maxLength: 40 }),
  x509_svid: bytesArb,
  x509_svid_key: bytesArb,
  bundle: bytesArb,
  hint: fc.string({ maxLength: 20 }),
});
const mapArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'), bytesArb, { maxKeys: 3 });
const responseArb = fc.record({ svids: fc.array(svidArb, { maxLength: 3 }), crl: fc.array(bytesArb, { maxLength: 2 }), federated_bundles: mapArb });

/** An unknown field (number 6..1000) of a valid wire type, to splice between known ones. */
const unknownFieldArb = fc.oneof(
  fc.tuple(fc.integer({ min: 6, max: 1000 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(([no, v]) => Buffer.concat([tag(no, 0), varint(v)])),
  fc.tuple(fc.integer({ min: 6, max: 1000 }), bytesArb).map(([no, b]) => len(no, b)),
  fc.integer({ min: 6, max: 1000 }).map((no) => Buffer.concat([tag(no, 1), Buffer.alloc(8, 7)])),
  fc.integer({ min: 6, max: 1000 }).map((no) => Buffer.concat([tag(no, 5), Buffer.alloc(4, 7)])),
);

function plain(m: X509SvidResponseMessage): unknown {
  return {
    svids: m.svids.map((s) => ({ ...s, x509_svid: s.x509_svid.toString('hex'), x509_svid_key: s.x509_svid_key.toString('hex'), bundle: s.bundle.toString('hex') })),
    crl: m.crl.map((c) => c.toString('hex')),
    federated_bundles: Object.fromEntries(Object.entries(m.federated_bundles).map(([k, v]) => [k, Buffer.from(v).toString('hex')])),
  };
}

test('varints: every 64-bit value reads back; truncated and over-long varints are rejected', () => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (n) => {
    const b = varint(n);
    assert.deepEqual(readVarint(b, 0), { value: n, next: b.length });
    for (let cut = 0; cut < b.length; cut++) assert.throws(() => readVarint(b.subarray(0, cut), 0), ProtoWireError);
  }));
  assert.throws(() => readVarint(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), 0), /64 bits/);
  assert.throws(() => readVarint(Buffer.alloc(11, 0x80), 0), ProtoWireError);
});

test('X509SVIDResponse: what protobufjs encodes decodes to the same message', async () => {
  const { FETCH_X509_SVID } = await workloadApiDefinitions();
  fc.assert(fc.property(responseArb, (m) => {
    const wire = FETCH_X509_SVID.responseSerialize(m);
    assert.deepEqual(plain(decodeX509SvidResponse(wire)), plain(m));
  }));
});

test('X509BundlesResponse: what protobufjs encodes decodes to the same message', async () => {
  const { FETCH_X509_BUNDLES } = await workloadApiDefinitions();
  fc.assert(fc.property(fc.record({ crl: fc.array(bytesArb, { maxLength: 2 }), bundles: mapArb }), (m) => {
    const d = decodeX509BundlesResponse(FETCH_X509_BUNDLES.responseSerialize(m));
    assert.deepEqual(d.crl.map((c) => c.toString('hex')), m.crl.map((c) => c.toString('hex')));
    assert.deepEqual(Object.fromEntries(Object.entries(d.bundles).map(([k, v]) => [k, v.toString('hex')])), Object.fromEntries(Object.entries(m.bundles).map(([k, v]) => [k, v.toString('hex')])));
  }));
});

test('unknown fields are skipped at every level', () => {
  fc.assert(fc.property(svidArb, fc.array(unknownFieldArb, { maxLength: 4 }), fc.array(unknownFieldArb, { maxLength: 4 }), (s, inner, outer) => {
    const svid = Buffer.concat([
      ...inner,
      len(1, Buffer.from(s.spiffe_id)), len(2, s.x509_svid), len(3, s.x509_svid_key), len(4, s.bundle), len(5, Buffer.from(s.hint)),
    ]);
    const msg = Buffer.concat([...outer, len(1, svid), ...outer]);
    assert.deepEqual(plain(decodeX509SvidResponse(msg)), plain({ svids: [s], crl: [], federated_bundles: {} }));
  }));
});

test('a length past the end of the message is rejected (outer and nested), never read past', () => {
  fc.assert(fc.property(bytesArb, fc.integer({ min: 1, max: 1 << 30 }), (b, extra) => {
    const lying = Buffer.concat([tag(1, 2), varint(BigInt(b.length + extra)), b]);
    assert.throws(() => decodeX509SvidResponse(lying), ProtoWireError);
    assert.throws(() => decodeX509SvidResponse(len(1, Buffer.concat([tag(2, 2), varint(BigInt(b.length + extra)), b]))), ProtoWireError);
  }));
  // A 64-bit length.
  assert.throws(() => decodeX509SvidResponse(Buffer.concat([tag(2, 2), varint((1n << 63n) + 5n)])), /length exceeds/);
});

test('group and unknown wire types, field number 0 and truncated fixed-size fields are rejected', () => {
  for (const wire of [3, 4, 6, 7]) assert.throws(() => [...fields(tag(9, wire))], /unsupported wire type/);
  assert.throws(() => [...fields(Buffer.from([0x02, 0x00]))], /invalid field number/);
  assert.throws(() => [...fields(Buffer.concat([tag(9, 1), Buffer.alloc(7)]))], /truncated fixed-size/);
  assert.throws(() => [...fields(Buffer.concat([tag(9, 5), Buffer.alloc(3)]))], /truncated fixed-size/);
  assert.throws(() => [...fields(tag(9, 0))], /truncated varint/);
});

test('a known field with the wrong wire type is rejected', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0, 1, 5), (no, wire) => {
    const body = wire === 0 ? varint(1n) : Buffer.alloc(wire === 1 ? 8 : 4);
    assert.throws(() => decodeX509SvidResponse(Buffer.concat([tag(no, wire), body])), /wire type/);
  }));
  for (let no = 1; no <= 5; no++) assert.throws(() => decodeX509SvidResponse(len(1, Buffer.concat([tag(no, 0), varint(5n)]))), /wire type/);
});

test('strings must be valid UTF-8', () => {
  assert.throws(() => decodeX509SvidResponse(len(1, len(1, Buffer.from([0xc3, 0x28])))), /not valid UTF-8/);
  assert.throws(() => decodeX509SvidResponse(len(3, len(1, Buffer.from([0xff])))), /not valid UTF-8/);
});

test('arbitrary bytes: the decoders return or throw ProtoWireError, nothing else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
    for (const decode of [decodeX509SvidResponse, decodeX509BundlesResponse]) {
      try {
        decode(Buffer.from(a));
      } catch (e) {
        assert.ok(e instanceof ProtoWireError, String(e));
      }
    }
  }), { numRuns: 2000 });
});

test('a map key "__proto__" is an ordinary key, not a prototype change', () => {
  const entry = Buffer.concat([len(1, Buffer.from('__proto__')), len(2, Buffer.from([1, 2]))]);
  const d = decodeX509SvidResponse(len(3, entry));
  assert.deepEqual(Object.keys(d.federated_bundles), ['__proto__']);
  assert.equal(Object.getPrototypeOf(d.federated_bundles), null);
});
