import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeShareBody, ShareWireError } from './keeper.js';
import { MAX_SHARE_EPOCH } from './index.js';

const body = (extra: string): Uint8Array => Buffer.from(`{"shard":[${new Array(32).fill(7).join(',')}]${extra}}`);

test('wire: the share epoch is bounded (1 … MAX_SHARE_EPOCH); out-of-range epochs are refused before any slot rule', () => {
  assert.equal(decodeShareBody(body('')).epoch, undefined);
  assert.equal(decodeShareBody(body(',"epoch":1')).epoch, 1);
  assert.equal(decodeShareBody(body(`,"epoch":${MAX_SHARE_EPOCH}`)).epoch, MAX_SHARE_EPOCH);
  for (const e of [String(MAX_SHARE_EPOCH + 1), String(Number.MAX_SAFE_INTEGER), '9007199254740993', '0', '-1', '1.5', '"1"', 'null']) {
    assert.throws(() => decodeShareBody(body(`,"epoch":${e}`)), ShareWireError, `epoch ${e}`);
  }
});
