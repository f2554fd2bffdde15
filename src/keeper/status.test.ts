/**
 * The Keeper's status answer as Nexus decodes it: strict schema, integers as Go writes them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpikeError } from '../lib/index.js';
import { decodeKeeperStatus } from './status.js';

const enc = (s: string): Uint8Array => Buffer.from(s);
const refused = (s: string): void => {
  assert.throws(() => decodeKeeperStatus(enc(s)), (e: unknown) => e instanceof SpikeError && e.code === 'keeper_bad_response', s);
};

test('keeper status: epoch, id and pending are decoded; no share is epoch null', () => {
  assert.deepEqual(decodeKeeperStatus(enc('{"epoch":3,"id":2,"pending":4}')), { epoch: 3, id: 2, pending: 4, confirmed: undefined, anchor: undefined });
  assert.deepEqual(decodeKeeperStatus(enc('{"epoch":null,"id":null}')), { epoch: null, id: null, pending: null, confirmed: undefined, anchor: undefined });
  assert.equal(decodeKeeperStatus(enc('{"epoch":1,"id":2,"confirmed":false}')).confirmed, false, 'a Bootstrap share not yet sent by Nexus');
});

test('keeper status: a number written with a fraction or an exponent is refused (Go writes integers as integers)', () => {
  for (const v of ['3.0', '3e0', '0.3e1']) {
    refused(`{"epoch":${v},"id":2}`);
    refused(`{"epoch":3,"id":2,"pending":${v}}`);
  }
  refused('{"epoch":3,"id":1e0}');
  refused('{"epoch":0,"id":2}');
  refused('not json');
});
