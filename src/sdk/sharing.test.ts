/** Decoding of the sharing-move answers: public numbers only, malformed answers refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeReshare, decodeSharingResult } from './sharing.js';

test('sharing answers: refresh and reshare decode; a missing or non-integer field is a malformed answer', () => {
  assert.deepEqual(decodeSharingResult({ epoch: 2, threshold: 2, shares: 3 }, 'refresh'), { epoch: 2, threshold: 2, shares: 3 });
  assert.deepEqual(decodeReshare({ changed: false, epoch: 1, threshold: 2, shares: 3, extra: 'x' }), { changed: false, epoch: 1, threshold: 2, shares: 3 });
  assert.throws(() => decodeReshare({ epoch: 2, threshold: 3, shares: 5 }), /malformed reshare answer/);
  assert.throws(() => decodeReshare({ changed: true, epoch: 2.5, threshold: 3, shares: 5 }), /malformed reshare answer/);
  assert.throws(() => decodeSharingResult({ epoch: 2, threshold: '2', shares: 3 }, 'refresh'), /malformed refresh answer/);
});
