/**
 * watchSecret: first read and every change reach onChange, unchanged reads do not, a failed
 * read keeps the last values and goes to onError, close/abort stop reading and drop the
 * values, bad options refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NexusApiError, SdkUsageError } from './errors.js';
import type { SecretReader } from './secret-cache.js';
import { watchSecret } from './secret-watch.js';
import type { SecretValues } from './types.js';

/** A reader whose answer the test sets; `fail` makes reads throw. */
function scripted(initial: SecretValues): SecretReader & { value: SecretValues; fail: boolean; reads: number } {
  const r = {
    value: initial,
    fail: false,
    reads: 0,
    async getSecret(): Promise<SecretValues> {
      r.reads++;
      await Promise.resolve();
      if (r.fail) throw new NexusApiError('net_peer_connection');
      return { ...r.value };
    },
  };
  return r;
}

async function until(cond: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('watch: onChange sees the first values and each change, not unchanged reads', async () => {
  const r = scripted({ password: 'p1' });
  const changes: SecretValues[] = [];
  const w = watchSecret(r, 'apps/db', { intervalMs: 5, onChange: (v) => changes.push(v) });
  assert.deepEqual({ ...(await w.ready()) }, { password: 'p1' });
  await until(() => r.reads >= 4, 'a few unchanged reads');
  assert.equal(changes.length, 1);
  r.value = { password: 'p2' };
  await until(() => changes.length === 2, 'the change');
  assert.equal(w.current?.['password'], 'p2');
  assert.ok(Object.isFrozen(w.current));
  w.close();
});

test('watch: a failed read keeps the last values and goes to onError; reads go on', async () => {
  const r = scripted({ k: 'v' });
  const errors: unknown[] = [];
  const w = watchSecret(r, 'apps/db', { intervalMs: 5, onError: (e) => errors.push(e) });
  await w.ready();
  r.fail = true;
  await until(() => errors.length >= 2, 'two failed reads');
  assert.ok(errors.every((e) => e instanceof NexusApiError && e.code === 'net_peer_connection'));
  assert.equal(w.current?.['k'], 'v');
  r.fail = false;
  r.value = { k: 'w' };
  await until(() => w.current?.['k'] === 'w', 'recovery after the failures');
  w.close();
});

test('watch: a throwing callback neither stops the watch nor escapes', async () => {
  const r = scripted({ k: '1' });
  const w = watchSecret(r, 'apps/db', {
    intervalMs: 5,
    onChange: () => {
      throw new Error('app bug');
    },
    onError: () => {
      throw new Error('another app bug');
    },
  });
  await w.ready();
  r.value = { k: '2' };
  await until(() => w.current?.['k'] === '2', 'the next change');
  w.close();
});

test('watch: close() stops reading, drops the values and rejects a pending ready(); abort does the same', async () => {
  const r = scripted({ k: '1' });
  const w = watchSecret(r, 'apps/db', { intervalMs: 5 });
  await w.ready();
  w.close();
  w.close();
  assert.equal(w.current, undefined);
  const reads = r.reads;
  await new Promise((res) => setTimeout(res, 50));
  assert.ok(r.reads <= reads + 1, 'reads went on after close');

  const failing = scripted({});
  failing.fail = true;
  const ac = new AbortController();
  const w2 = watchSecret(failing, 'apps/db', { intervalMs: 5, signal: ac.signal });
  ac.abort();
  await assert.rejects(w2.ready(), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');

  const pre = new AbortController();
  pre.abort();
  const r3 = scripted({ k: '1' });
  const w3 = watchSecret(r3, 'apps/db', { intervalMs: 5, signal: pre.signal });
  await assert.rejects(w3.ready(), SdkUsageError);
  assert.equal(r3.reads, 0);
});

test('watch: a missing, zero or fractional interval is a usage error', () => {
  for (const intervalMs of [undefined, 0, 0.5, -5, 2 ** 31]) {
    assert.throws(() => watchSecret(scripted({}), 'a', { intervalMs } as { intervalMs: number }), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_bad_argument');
  }
});

test('watch: closing the reader (its closeSignal) stops the watch and drops the values', async () => {
  const ac = new AbortController();
  const r = Object.assign(scripted({ k: '1' }), { closeSignal: ac.signal });
  const w = watchSecret(r, 'apps/db', { intervalMs: 5 });
  await w.ready();
  ac.abort();
  assert.equal(w.current, undefined);
});

test('watch: ready() settles with a first refusal, waits through network failures, and is bounded by its signal', async (t) => {
  let answer: 'missing' | 'down' | 'ok' = 'missing';
  const reader: SecretReader = {
    async getSecret(): Promise<SecretValues> {
      await Promise.resolve();
      if (answer === 'missing') throw new NexusApiError('api_not_found', { status: 404 });
      if (answer === 'down') throw new NexusApiError('net_peer_connection');
      return { k: 'v' };
    },
  };
  const keepAlive = setInterval(() => undefined, 1000); // the watch's own timer does not hold the process
  t.after(() => clearInterval(keepAlive));
  const w = watchSecret(reader, 'apps/db', { intervalMs: 5 });
  await assert.rejects(w.ready(), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');
  // a network failure does not answer ready(); the caller's signal ends its own wait
  answer = 'down';
  const ac = new AbortController();
  const waiting = w.ready({ signal: ac.signal });
  setTimeout(() => ac.abort(new Error('gave up')), 50);
  await assert.rejects(waiting, /gave up/);
  // once a read succeeds, ready() has the values, now and later
  answer = 'ok';
  assert.deepEqual({ ...(await w.ready()) }, { k: 'v' });
  assert.deepEqual({ ...(await w.ready()) }, { k: 'v' });
  w.close();
  await assert.rejects(w.ready(), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');
});

test('watch: inspecting or serialising it never shows the values', async () => {
  const w = watchSecret(scripted({ password: 'TOPSECRET-9b1e' }), 'apps/db', { intervalMs: 1000 });
  await until(() => w.current !== undefined, 'the first read');
  const { inspect } = await import('node:util');
  for (const shown of [inspect(w, { depth: 10, showHidden: true }), JSON.stringify(w), JSON.stringify({ w })]) {
    assert.ok(!shown.includes('TOPSECRET'), shown);
  }
  assert.equal(inspect(w), 'SecretWatch { 1 value }');
  assert.equal(JSON.stringify(w), '{"closed":false,"ready":true}');
  w.close();
});

/** Runs `body` as an ES module in a child Node with `watchSecret` and `NexusApiError` imported; its stdout. */
async function inChild(body: string): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  const here = new URL('.', import.meta.url);
  const script = `
    const { watchSecret } = await import(${JSON.stringify(new URL('secret-watch.js', here).href)});
    const { NexusApiError } = await import(${JSON.stringify(new URL('errors.js', here).href)});
    ${body}`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
}

test('watch: an app that only awaits ready() is kept alive through failed reads until its first value', async () => {
  assert.equal(await inChild(`
    let n = 0;
    const w = watchSecret({ async getSecret() { n++; if (n < 3) throw new NexusApiError('net_peer_connection'); return { k: 'v' }; } }, 'a/b', { intervalMs: 20 });
    const v = await w.ready();
    process.stdout.write(n + ' ' + v.k);
    w.close();`), '3 v');
});

test('watch: an app whose every ready() wait gave up (its signal) exits; the watch does not hold it', async () => {
  assert.equal(await inChild(`
    const w = watchSecret({ async getSecret() { throw new NexusApiError('net_peer_connection'); } }, 'a/b', { intervalMs: 20 });
    let gaveUp = 0;
    for (let i = 0; i < 5; i++) await w.ready({ signal: AbortSignal.timeout(50) }).catch(() => gaveUp++);
    process.stdout.write(String(gaveUp)); // no close(): the process must still end`), '5');
});

test('attack-watch-stale-secret: a deleted or revoked secret is dropped at the next read (current undefined, ready() waits again), not served from memory; a read that succeeds again brings it back', async () => {
  let answer: 'ok' | 'gone' | 'revoked' = 'ok';
  let reads = 0;
  const errors: string[] = [];
  const reader: SecretReader = {
    async getSecret(): Promise<SecretValues> {
      reads++;
      await Promise.resolve();
      if (answer === 'gone') throw new NexusApiError('api_not_found', { status: 404 });
      if (answer === 'revoked') throw new NexusApiError('access_unauthorized', { status: 401 });
      return { password: 'old-s3cret' };
    },
  };
  const w = watchSecret(reader, 'apps/db', { intervalMs: 5, onError: (e) => errors.push((e as NexusApiError).code) });
  assert.deepEqual({ ...(await w.ready()) }, { password: 'old-s3cret' });
  for (const refusal of ['gone', 'revoked'] as const) {
    answer = refusal;
    await until(() => w.current === undefined, `${refusal}: the values dropped`);
    await assert.rejects(w.ready(), (e: unknown) => e instanceof NexusApiError);
    answer = 'ok';
    await until(() => w.current !== undefined, 'read again');
  }
  assert.deepEqual(errors.slice(0, 1), ['api_not_found']);
  assert.ok(errors.includes('access_unauthorized'));
  // Failed reads in a row are spaced out (doubling), not retried every 5 ms.
  answer = 'gone';
  const from = reads;
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(reads - from <= 8, `reads in 400 ms while refused: ${reads - from}`);
  w.close();
});
