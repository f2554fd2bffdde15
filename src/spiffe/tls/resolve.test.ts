// test-process: own
// Its afterEach replaces dns.lookup for the whole process.
/**
 * resolve.ts: which lookup answers are dialled by address (one distinct address) and which are
 * left to node:net (several); a prefetched answer is used by the next dial of the name only
 * (the dial after it looks up again); a failed lookup reaches the caller as node's own error.
 * node:dns's `lookup` is replaced for these tests (resolve.ts calls it through the module).
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import dns, { type LookupAddress } from 'node:dns';
import { lookupSingle, prefetchLookup, singleAddress } from './resolve.js';

const realLookup = dns.lookup;
afterEach(() => {
  (dns as { lookup: unknown }).lookup = realLookup;
});

/** Replaces dns.lookup with one that answers `answers` in turn; returns the host names asked. */
function fakeLookup(answers: Array<LookupAddress[] | NodeJS.ErrnoException>): string[] {
  const asked: string[] = [];
  (dns as { lookup: unknown }).lookup = (host: string, opts: { all?: boolean }, cb: (e: Error | null, a?: LookupAddress[]) => void): void => {
    assert.equal(opts.all, true);
    asked.push(host);
    const a = answers.shift() ?? [];
    setImmediate(() => (a instanceof Error ? cb(a) : cb(null, a)));
  };
  return asked;
}

const lookup = (host: string): Promise<{ err: Error | null; address: string | undefined }> =>
  new Promise((resolve) => lookupSingle(host, (err, address) => resolve({ err, address })));

test('singleAddress: one distinct address is dialled by address; several, or none, are left to node:net', () => {
  assert.equal(singleAddress([{ address: '127.0.0.1', family: 4 }]), '127.0.0.1');
  assert.equal(singleAddress([{ address: '::1', family: 6 }]), '::1');
  assert.equal(singleAddress([{ address: '10.0.0.1', family: 4 }, { address: '10.0.0.1', family: 4 }]), '10.0.0.1');
  assert.equal(singleAddress([{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]), undefined);
  assert.equal(singleAddress([{ address: '10.0.0.1', family: 4 }, { address: '10.0.0.2', family: 4 }]), undefined);
  assert.equal(singleAddress([]), undefined);
});

test('a prefetched answer is used by the next dial of that name only; the one after looks up again', async () => {
  const asked = fakeLookup([[{ address: '10.1.1.1', family: 4 }], [{ address: '10.2.2.2', family: 4 }]]);
  prefetchLookup('nexus.example');
  assert.deepEqual(await lookup('nexus.example'), { err: null, address: '10.1.1.1' });
  assert.deepEqual(await lookup('nexus.example'), { err: null, address: '10.2.2.2' });
  assert.deepEqual(asked, ['nexus.example', 'nexus.example']);
});

test('a dial that starts before the prefetched answer is in waits for it (no second lookup)', async () => {
  const asked = fakeLookup([[{ address: '10.3.3.3', family: 4 }]]);
  prefetchLookup('early.example');
  const r = lookup('early.example'); // the fake answers on a later turn of the event loop
  assert.deepEqual(await r, { err: null, address: '10.3.3.3' });
  assert.deepEqual(asked, ['early.example']);
});

test('a prefetch for another name is not used; a failed lookup is the lookup error', async () => {
  const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND missing.example'), { code: 'ENOTFOUND' });
  const asked = fakeLookup([[{ address: '10.4.4.4', family: 4 }], notFound]);
  prefetchLookup('other.example');
  const r = await lookup('missing.example');
  assert.equal((r.err as NodeJS.ErrnoException | null)?.code, 'ENOTFOUND');
  assert.equal(r.address, undefined);
  assert.deepEqual(asked, ['other.example', 'missing.example']);
});
