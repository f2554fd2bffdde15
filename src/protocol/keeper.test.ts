import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeShareBody, encodeShareMessage, ShareWireError } from './keeper-share.js';
import { MAX_SHARE_EPOCH, RestoreRequest, ShareMessage } from './index.js';
import { JsonBytes, parseJson } from '../http/json.js';
import { parseBody } from '../http/index.js';

const body = (extra: string): Uint8Array => Buffer.from(`{"shard":[${new Array(32).fill(7).join(',')}]${extra}}`);

test('wire: the share epoch is bounded (1 … MAX_SHARE_EPOCH); out-of-range epochs are refused before any slot rule', () => {
  assert.equal(decodeShareBody(body('')).epoch, undefined);
  assert.equal(decodeShareBody(body(',"epoch":1')).epoch, 1);
  assert.throws(() => decodeShareBody(body(',"id":1e0')), ShareWireError, 'an id written with an exponent');
  assert.equal(decodeShareBody(body(`,"epoch":${MAX_SHARE_EPOCH}`)).epoch, MAX_SHARE_EPOCH);
  for (const e of [String(MAX_SHARE_EPOCH + 1), String(Number.MAX_SAFE_INTEGER), '9007199254740993', '0', '-1', '1.5', '1.0', '1e0', '"1"', 'null']) {
    assert.throws(() => decodeShareBody(body(`,"epoch":${e}`)), ShareWireError, `epoch ${e}`);
  }
});

test('wire: "pending" is true/false in a contribute request and a share object in a shard response; anything else is refused', () => {
  const shard = JSON.stringify(Array.from({ length: 32 }, (_, i) => i + 1));
  const other = JSON.stringify(Array.from({ length: 32 }, () => 9));
  const enc = (s: string): Uint8Array => Buffer.from(s);
  const req = decodeShareBody(enc(`{"shard":${shard},"id":1,"epoch":3,"pending":true}`));
  assert.deepEqual([req.pending, req.pendingShare], [true, undefined]);
  assert.equal(decodeShareBody(enc(`{"shard":${shard},"pending":false}`)).pending, undefined);
  const res = decodeShareBody(enc(`{"shard":${shard},"Err":"","epoch":2,"id":1,"pending":{"shard":${other},"id":1,"epoch":3}}`));
  assert.equal(res.epoch, 2);
  assert.deepEqual([res.pendingShare?.epoch, res.pendingShare?.id, res.pendingShare?.value[0]], [3, 1, 9]);
  for (const bad of ['"yes"', '1', '[]', `{"shard":${shard},"epoch":0}`, '{"id":1}']) {
    assert.throws(() => decodeShareBody(enc(`{"shard":${shard},"pending":${bad}}`)), ShareWireError, bad);
  }
  const round = encodeShareMessage({ value: new Uint8Array(32).fill(5), id: 2, epoch: 4, commitments: undefined, pending: true }, false);
  assert.match(round.toString(), /"pending":true/);
  assert.equal(decodeShareBody(round).pending, true);
});

/** The 32-byte buffers `fn` allocates (Buffer.alloc(32), which the [32]byte schema uses). */
function allocated32(fn: () => void): Buffer[] {
  const seen: Buffer[] = [];
  const alloc = Buffer.alloc;
  Buffer.alloc = ((size: number, ...rest: unknown[]) => {
    const b = (alloc as (size: number, ...r: unknown[]) => Buffer)(size, ...rest);
    if (size === 32) seen.push(b);
    return b;
  }) as typeof Buffer.alloc;
  try {
    fn();
  } finally {
    Buffer.alloc = alloc;
  }
  return seen;
}

test('P21 schema: a share decoded before a later field fails is zeroed, and so are the bytes the parser read', () => {
  const shard = Array.from({ length: 32 }, (_, i) => i + 1).join(',');
  for (const [schema, text] of [
    [ShareMessage, `{"shard":[${shard}],"epoch":0}`],
    [ShareMessage, `{"shard":[${shard}],"commitments":"not base64!"}`],
    [RestoreRequest, `{"id":1,"shard":[${shard}],"epoch":-1}`],
    // The pending share (nested) decoded, then a later top-level field fails.
    [ShareMessage, `{"shard":[${shard}],"pending":{"shard":[${shard}],"id":1,"epoch":2},"staged":"not-a-bool"}`],
  ] as const) {
    const made: JsonBytes[] = [];
    const doc = parseJson(Buffer.from(text), { keyBytes: { members: schema.keyMembers!, made } });
    assert.ok(made.length >= 1 && made.every((m) => m.value?.[31] === 32), 'the parser read each share as bytes');
    const bufs = allocated32(() => assert.throws(() => schema.parse(doc, '')));
    assert.ok(bufs.length >= 1, 'the share was decoded before the failing field');
    for (const b of bufs) assert.ok(b.every((x) => x === 0), 'decoded share zeroed');
    assert.ok(made.every((m) => m.value!.every((x) => x === 0)), 'the parser\'s bytes zeroed once read');
  }
  const made: JsonBytes[] = [];
  const doc = parseJson(Buffer.from(`{"id":2,"shard":[${shard}]}`), { keyBytes: { members: RestoreRequest.keyMembers!, made } });
  const parsed = RestoreRequest.parse(doc, '');
  assert.equal(parsed.shard[31], 32, 'a valid request keeps its share');
  assert.ok(made[0]!.value!.every((x) => x === 0), 'the parser\'s copy is zeroed once read');
});

test('P21 parseBody: key bytes the schema never read (an unknown member, a body that fails) are zeroed too', () => {
  const shard = Array.from({ length: 32 }, () => 7).join(',');
  const seen: JsonBytes[] = [];
  const keep = JsonBytes.prototype.wipe;
  JsonBytes.prototype.wipe = function (this: JsonBytes) {
    seen.push(this);
    keep.call(this);
  };
  try {
    parseBody(ShareMessage, Buffer.from(`{"shard":[${shard}],"extra":{"shard":[${shard}]}}`));
    assert.throws(() => parseBody(ShareMessage, Buffer.from(`{"shard":[${shard}],"epoch":"x"}`)));
    assert.throws(() => parseBody(ShareMessage, Buffer.from(`{"shard":[${shard}],"epoch":1,}`)), 'a syntax error after the share');
  } finally {
    JsonBytes.prototype.wipe = keep;
  }
  assert.ok(seen.length >= 4, `every share the parser read was wiped (${seen.length})`);
  assert.ok(seen.every((m) => m.value === null || m.value.every((x) => x === 0)));
});

test('P21 schema: a [32]byte field parsed as plain numbers (no keyBytes) is a defect, never accepted', () => {
  const doc = parseJson(Buffer.from(`{"shard":[${Array.from({ length: 32 }, () => 1).join(',')}]}`));
  assert.throws(() => ShareMessage.parse(doc, ''), /parsed as numbers/);
});
