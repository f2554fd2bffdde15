/**
 * baseMul (g^k through OpenSSL, decoded by noble) against noble's own base-point ladder: the
 * same point for every scalar, the identity for 0, and scalars outside [0, n) refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { baseMul, ORDER, Point } from './field.js';
import { CryptoError } from './errors.js';

const scalar = fc.bigInt({ min: 1n, max: ORDER - 1n });

test('property: baseMul(k) is noble\'s g·k for any k in [1, n)', () => {
  fc.assert(fc.property(scalar, (k) => baseMul(k).equals(Point.BASE.multiply(k))), { numRuns: 200 });
});

test('baseMul at the edges: 0 is the identity, 1 is g, n−1 is −g; n, 2^256 and negatives are refused', () => {
  assert.ok(baseMul(0n).equals(Point.ZERO));
  assert.ok(baseMul(1n).equals(Point.BASE));
  assert.ok(baseMul(ORDER - 1n).equals(Point.BASE.negate()));
  for (const bad of [ORDER, ORDER + 1n, 1n << 256n, -1n]) {
    assert.throws(() => baseMul(bad), (e: unknown) => e instanceof CryptoError && e.code === 'crypto_bad_input', String(bad));
  }
});
