/**
 * SecretCache: served from memory within the TTL, dropped by its timer after it, one request
 * for concurrent reads, failures not cached, copies handed out, invalidate/close/abort and the
 * client's close() forget everything, bad options refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent } from 'undici';
import { NexusClient } from './client.js';
import { NexusApiError, SdkUsageError } from './errors.js';
import { createSecretCache, type SecretReader } from './secret-cache.js';
import type { SecretValues, VersionOption } from './types.js';

/** A reader that counts calls and answers from a map (a missing path → api_not_found). */
function fakeReader(data: Record<string, SecretValues>): SecretReader & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async getSecret(path: string, opts: VersionOption = {}): Promise<SecretValues> {
      calls.push(opts.version === undefined ? path : `${path}@${opts.version}`);
      await Promise.resolve();
      const v = data[path];
      if (!v) throw new NexusApiError('api_not_found', { status: 404 });
      return { ...v };
    },
  };
}

async function until(cond: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('cache: a second read within the TTL is served from memory', async () => {
  const r = fakeReader({ 'apps/db': { password: 'p1' } });
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  assert.deepEqual({ ...(await cache.getSecret('apps/db')) }, { password: 'p1' });
  assert.deepEqual({ ...(await cache.getSecret('apps/db')) }, { password: 'p1' });
  assert.deepEqual(r.calls, ['apps/db']);
  assert.equal(cache.size, 1);
  cache.close();
});

test('cache: the entry is dropped from memory when the TTL ends, and the next read fetches again', async () => {
  const r = fakeReader({ 'apps/db': { password: 'p1' } });
  const cache = createSecretCache(r, { ttlMs: 20 });
  await cache.getSecret('apps/db');
  await until(() => cache.size === 0, 'the TTL timer to drop the entry');
  await cache.getSecret('apps/db');
  assert.deepEqual(r.calls, ['apps/db', 'apps/db']);
  cache.close();
});

test('cache: concurrent reads of one path share a single request; versions are separate entries', async () => {
  const r = fakeReader({ 'apps/db': { password: 'p1' } });
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  await Promise.all([cache.getSecret('apps/db'), cache.getSecret('apps/db'), cache.getSecret('apps/db')]);
  await cache.getSecret('apps/db', { version: 2 });
  assert.deepEqual(r.calls, ['apps/db', 'apps/db@2']);
  assert.equal(cache.size, 2);
  cache.close();
});

test('cache: failures are not cached', async () => {
  const r = fakeReader({});
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  await assert.rejects(cache.getSecret('apps/none'), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');
  await assert.rejects(cache.getSecret('apps/none'), NexusApiError);
  assert.equal(r.calls.length, 2);
  assert.equal(cache.size, 0);
  cache.close();
});

test('cache: each read gets its own copy; changing it does not change the cache', async () => {
  const cache = createSecretCache(fakeReader({ 'apps/db': { password: 'p1' } }), { ttlMs: 60_000 });
  const a = await cache.getSecret('apps/db');
  a['password'] = 'changed';
  assert.equal((await cache.getSecret('apps/db'))['password'], 'p1');
  cache.close();
});

test('cache: invalidate(path) forgets that path only; invalidate() forgets everything', async () => {
  const r = fakeReader({ a: { k: '1' }, b: { k: '2' } });
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  await cache.getSecret('a');
  await cache.getSecret('a', { version: 1 });
  await cache.getSecret('b');
  cache.invalidate('a');
  assert.equal(cache.size, 1);
  cache.invalidate();
  assert.equal(cache.size, 0);
  cache.close();
});

test('cache: a read in flight across invalidate() is returned but not kept', async () => {
  const r = fakeReader({ a: { k: '1' } });
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  const p = cache.getSecret('a');
  cache.invalidate();
  assert.equal((await p)['k'], '1');
  assert.equal(cache.size, 0);
  cache.close();
});

test('cache: close() drops every value and later reads fail with sdk_closed; an aborted signal closes it', async () => {
  const cache = createSecretCache(fakeReader({ a: { k: '1' } }), { ttlMs: 60_000 });
  await cache.getSecret('a');
  cache.close();
  cache.close();
  assert.equal(cache.size, 0);
  await assert.rejects(cache.getSecret('a'), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');

  const ac = new AbortController();
  const withSignal = createSecretCache(fakeReader({ a: { k: '1' } }), { ttlMs: 60_000, signal: ac.signal });
  await withSignal.getSecret('a');
  ac.abort();
  assert.equal(withSignal.size, 0);
  await assert.rejects(withSignal.getSecret('a'), SdkUsageError);
});

test('cache: maxEntries drops the oldest entry first', async () => {
  const r = fakeReader({ a: { k: '1' }, b: { k: '2' }, c: { k: '3' } });
  const cache = createSecretCache(r, { ttlMs: 60_000, maxEntries: 2 });
  await cache.getSecret('a');
  await cache.getSecret('b');
  await cache.getSecret('c');
  assert.equal(cache.size, 2);
  await cache.getSecret('a');
  assert.deepEqual(r.calls, ['a', 'b', 'c', 'a']);
  cache.close();
});

test('cache: a missing, zero, fractional or huge TTL is a usage error', () => {
  const r = fakeReader({});
  for (const ttlMs of [undefined, 0, -1, 1.5, Number.NaN, 2 ** 31]) {
    assert.throws(() => createSecretCache(r, { ttlMs } as { ttlMs: number }), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_bad_argument');
  }
  assert.throws(() => createSecretCache(r, { ttlMs: 10, maxEntries: 0 }), SdkUsageError);
});

test('cache: closing the reader (its closeSignal) clears and closes the cache, as NexusClient.close() does', async () => {
  const ac = new AbortController();
  const r = Object.assign(fakeReader({ a: { k: '1' } }), { closeSignal: ac.signal });
  const cache = createSecretCache(r, { ttlMs: 60_000 });
  await cache.getSecret('a');
  ac.abort();
  assert.equal(cache.size, 0);
  await assert.rejects(cache.getSecret('a'), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');

  const client = NexusClient.create({ urls: ['https://127.0.0.1:1'], dispatcher: new Agent() });
  const onClient = createSecretCache(client, { ttlMs: 60_000 });
  assert.equal(client.closeSignal.aborted, false);
  await client.close();
  assert.equal(client.closeSignal.aborted, true);
  await assert.rejects(onClient.getSecret('a'), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');
});

test('cache: one caller\'s abort ends its own wait only; the shared read carries no caller\'s signal', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const seen: Array<AbortSignal | undefined> = [];
  const reader: SecretReader = {
    async getSecret(_path: string, opts: VersionOption = {}): Promise<SecretValues> {
      seen.push(opts.signal);
      await gate;
      return { k: 'v' };
    },
  };
  const cache = createSecretCache(reader, { ttlMs: 60_000 });
  const ac = new AbortController();
  const a = cache.getSecret('apps/db', { signal: ac.signal });
  const b = cache.getSecret('apps/db');
  ac.abort(new Error('caller a gave up'));
  await assert.rejects(a, /caller a gave up/);
  release();
  assert.deepEqual({ ...(await b) }, { k: 'v' }, 'b still gets its value');
  assert.equal(seen.length, 1, 'one shared read');
  assert.notEqual(seen[0], ac.signal, "sent without a caller's signal");
  assert.equal(seen[0]?.aborted, false, 'and not cancelled while b waited');
  assert.equal(cache.size, 1, 'and kept for the next reader');
  // an already aborted signal rejects at once, without a read
  const done = new AbortController();
  done.abort(new Error('already'));
  await assert.rejects(cache.getSecret('apps/other', { signal: done.signal }), /already/);
  assert.equal(seen.length, 1);
  cache.close();
});

test('cache: when every caller waiting for a shared read has given up, the read is cancelled and the next read starts afresh', async () => {
  const seen: AbortSignal[] = [];
  const reader: SecretReader = {
    getSecret(_path: string, opts: VersionOption = {}): Promise<SecretValues> {
      const signal = opts.signal!;
      seen.push(signal);
      if (seen.length > 1) return Promise.resolve({ k: 'fresh' });
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    },
  };
  const cache = createSecretCache(reader, { ttlMs: 60_000 });
  const a = new AbortController();
  const b = new AbortController();
  const ra = cache.getSecret('apps/db', { signal: a.signal });
  const rb = cache.getSecret('apps/db', { signal: b.signal });
  a.abort(new Error('a gave up'));
  await assert.rejects(ra, /a gave up/);
  assert.equal(seen[0]!.aborted, false, 'b still waits: the read goes on');
  b.abort(new Error('b gave up'));
  await assert.rejects(rb, /b gave up/);
  assert.equal(seen[0]!.aborted, true, 'nobody waits: the read is cancelled');
  assert.deepEqual({ ...(await cache.getSecret('apps/db')) }, { k: 'fresh' }, 'a later read does not join the cancelled one');
  assert.equal(seen.length, 2);
  assert.equal(cache.size, 1);
  cache.close();
});

test('cache: a cancelled read that its reader finishes anyway is not kept over the newer read', async () => {
  const releases: Array<(v: SecretValues) => void> = [];
  // A reader that ignores the signal (a custom reader, or an answer already on its way).
  const reader: SecretReader = {
    getSecret: () => new Promise<SecretValues>((r) => releases.push(r)),
  };
  const cache = createSecretCache(reader, { ttlMs: 60_000 });
  const ac = new AbortController();
  const first = cache.getSecret('apps/db', { signal: ac.signal });
  ac.abort(new Error('gave up'));
  await assert.rejects(first, /gave up/);
  const second = cache.getSecret('apps/db');
  await until(() => releases.length === 2, 'the second read');
  releases[1]!({ v: 'new' });
  assert.deepEqual({ ...(await second) }, { v: 'new' });
  releases[0]!({ v: 'old' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual({ ...(await cache.getSecret('apps/db')) }, { v: 'new' }, 'the cancelled read replaced the newer value');
  assert.equal(releases.length, 2, 'served from memory');
  cache.close();
});

test('cache: inspecting or serialising it shows its size, never a value or path', async () => {
  const cache = createSecretCache(fakeReader({ 'apps/db': { password: 'TOPSECRET-7f3a' } }), { ttlMs: 60_000 });
  await cache.getSecret('apps/db');
  const { inspect } = await import('node:util');
  for (const shown of [inspect(cache, { depth: 10, showHidden: true }), inspect(cache, { depth: 10, showHidden: true, customInspect: false }), JSON.stringify(cache), String(JSON.stringify({ cache }))]) {
    assert.ok(!shown.includes('TOPSECRET') && !shown.includes('apps/db'), shown);
  }
  assert.match(inspect(cache), /^SecretCache \{ size: 1, ttlMs: 60000 \}$/);
  cache.close();
});
