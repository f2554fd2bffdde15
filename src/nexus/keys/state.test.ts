import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { KeyState } from './state.js';

test('shareFor recomputes every share from the basis, even after the caller wiped its copies (D5)', () => {
  const root = RootKey.generate();
  const { shares, commitments } = splitSecret(root, 3, 5);
  const expected = shares.map((s) => Buffer.from(s.value).toString('hex'));
  const basis = [shares[4]!, shares[1]!, shares[2]!].map((s) => ({ id: s.id, value: Uint8Array.from(s.value) }));
  const keys = new KeyState();
  let pushed = 0;
  keys.onReady(() => {
    // Listeners run inside install(): the basis must already be usable here.
    for (let id = 1; id <= 5; id++) wipeShare(keys.shareFor(id));
    pushed++;
  });
  keys.install(RootKey.fromBytes(root.bytes()), basis, { epoch: 1, threshold: 3, shares: 5, commitments });
  basis.forEach(wipeShare);
  shares.forEach(wipeShare);
  assert.equal(pushed, 1);
  for (let id = 1; id <= 5; id++) {
    const s = keys.shareFor(id);
    assert.equal(Buffer.from(s.value).toString('hex'), expected[id - 1]);
    wipeShare(s);
  }
  assert.throws(() => keys.install(RootKey.generate(), basis, { epoch: 1, threshold: 3, shares: 5, commitments }), /already installed/);
  keys.clear();
  assert.throws(() => keys.shareFor(1), /no root key/);
});
