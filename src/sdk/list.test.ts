/**
 * SDK paged listing: request bodies (SPIKE's `{}` without options), argument checks before
 * sending, page decoding, and the all-pages iterator (also against a server that ignores
 * paging and answers everything at once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_LISTED, decodeSecretPage, eachSecretPath, listRequest, type ListSecretsOptions, type SecretPage } from './list.js';
import { NexusApiError, SdkUsageError } from './errors.js';

test('listRequest: {} without options; additive fields only when set; cursor goes out as `after`', () => {
  assert.deepEqual(listRequest({}), {});
  assert.deepEqual(listRequest({ prefix: '' }), {});
  assert.deepEqual(listRequest({ prefix: 'app/', limit: 50, cursor: 'app/x' }), { prefix: 'app/', limit: 50, after: 'app/x' });
  for (const bad of [{ limit: 0 }, { limit: 10_001 }, { limit: 2.5 }, { prefix: 3 }, { cursor: 'x'.repeat(501) }, null] as unknown[]) {
    assert.throws(() => listRequest(bad as ListSecretsOptions), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_bad_argument');
  }
});

test('decodeSecretPage: keys and an optional next; a wrong next is a decode failure', () => {
  assert.deepEqual(decodeSecretPage({ keys: ['a'] }), { keys: ['a'] });
  assert.deepEqual(decodeSecretPage({ keys: ['a', 'b'], next: 'b' }), { keys: ['a', 'b'], next: 'b' });
  assert.deepEqual(decodeSecretPage({ keys: null }), { keys: [] });
  assert.throws(() => decodeSecretPage({ keys: [], next: 5 }), (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure');
});

test('eachSecretPath: walks every page in order; stops on a server that does not page', async () => {
  const all = Array.from({ length: 23 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
  const asked: ListSecretsOptions[] = [];
  const pager = async (o: ListSecretsOptions): Promise<SecretPage> => {
    asked.push(o);
    const from = o.cursor === undefined ? 0 : all.indexOf(o.cursor) + 1;
    const keys = all.filter((k) => k.startsWith(o.prefix ?? '')).slice(from, from + (o.limit ?? 1e9));
    return from + keys.length < all.length ? { keys, next: keys[keys.length - 1] as string } : { keys };
  };
  const got: string[] = [];
  for await (const k of eachSecretPath(pager, { prefix: 'p/', pageSize: 5 })) got.push(k);
  assert.deepEqual(got, all);
  assert.equal(asked.length, 5);
  assert.deepEqual(asked[1], { prefix: 'p/', limit: 5, cursor: 'p/04' });
  const old = async (): Promise<SecretPage> => ({ keys: all }); // SPIKE's Nexus: everything, no next
  const got2: string[] = [];
  for await (const k of eachSecretPath(old)) got2.push(k);
  assert.deepEqual(got2, all);
});

test('attack-list-endless-cursor: a Nexus whose cursor goes back, or that never stops paging, ends the listing with a decode failure instead of looping and growing for ever', async () => {
  let n = 0;
  const alternating = async (): Promise<SecretPage> => ({ keys: [`k${n}`], next: n++ % 2 === 0 ? 'a' : 'b' });
  const got: string[] = [];
  await assert.rejects((async () => { for await (const k of eachSecretPath(alternating)) got.push(k); })(),
    (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure');
  assert.ok(n <= 3, `pages asked: ${n}`);
  let m = 0;
  const endless = async (): Promise<SecretPage> => ({ keys: [], next: `c${String(m++).padStart(8, '0')}` });
  await assert.rejects((async () => { for await (const _ of eachSecretPath(endless)) void _; })(),
    (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure');
  assert.equal(m, MAX_LISTED + 1);
});
