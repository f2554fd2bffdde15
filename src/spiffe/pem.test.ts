/** PEM armour: the Buffer encoder against Node's own PEM output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pemBufferFromDer } from './pem.js';

test('pemBufferFromDer matches Node PEM output for every padding length', () => {
  for (const n of [0, 1, 2, 3, 47, 48, 49, 50, 100]) {
    const der = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff));
    const expected = `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).map((l) => l + '\n').join('')}-----END CERTIFICATE-----\n`;
    assert.equal(pemBufferFromDer('CERTIFICATE', der).toString(), expected, String(n));
  }
});
