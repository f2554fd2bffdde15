import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SpiffeId, SpiffeIdError, TrustDomain, MAX_SPIFFE_ID_LENGTH } from './id.js';

type Case = [input: string, expect: 'ok' | RegExp];

const TD_CHAR = /trust domain characters/;
const SEG_CHAR = /path segment characters/;
const SCHEME = /scheme is missing or invalid/;

const cases: Case[] = [
  // accepted
  ['spiffe://example.org', 'ok'],
  ['spiffe://example.org/workload', 'ok'],
  ['spiffe://example.org/a/b/c', 'ok'],
  ['spiffe://spike.ist/spike/pilot/role/superuser', 'ok'],
  ['spiffe://td_1.test-x/a', 'ok'],
  ['spiffe://1.2.3.4/x', 'ok'],
  ['spiffe://a/B-Z_9.x', 'ok'],
  ['spiffe://a/...', 'ok'],
  ['spiffe://a/.x', 'ok'],
  ['spiffe://a/x.', 'ok'],
  ['spiffe://a/..a', 'ok'],
  ['spiffe://-/_', 'ok'],
  ['spiffe://a/UPPER/Path', 'ok'],
  // scheme
  ['', /empty/],
  ['example.org/workload', SCHEME],
  ['SPIFFE://example.org/a', SCHEME],
  ['Spiffe://example.org/a', SCHEME],
  ['spiffe:/example.org/a', SCHEME],
  ['spiffe:example.org/a', SCHEME],
  ['https://example.org/a', SCHEME],
  [' spiffe://example.org/a', SCHEME],
  ['spiffe//example.org', SCHEME],
  // trust domain
  ['spiffe://', /trust domain is missing/],
  ['spiffe:///path', /trust domain is missing/],
  ['spiffe://Example.org/a', TD_CHAR],
  ['spiffe://EXAMPLE.ORG', TD_CHAR],
  ['spiffe://example.org:443/a', TD_CHAR],
  ['spiffe://user@example.org/a', TD_CHAR],
  ['spiffe://user:pw@example.org', TD_CHAR],
  ['spiffe://exa mple.org', TD_CHAR],
  ['spiffe://example%2eorg/a', TD_CHAR],
  ['spiffe://[::1]/a', TD_CHAR],
  ['spiffe://exämple.org/a', TD_CHAR],
  ['spiffe://example.org?q=1', TD_CHAR],
  ['spiffe://example.org#f', TD_CHAR],
  ['spiffe://example.org\\a', TD_CHAR],
  ['spiffe://' + 'a'.repeat(256), /trust domain is longer than 255/],
  // path
  ['spiffe://example.org/', /trailing slash/],
  ['spiffe://example.org/a/', /trailing slash/],
  ['spiffe://example.org//a', /empty segments/],
  ['spiffe://example.org/a//b', /empty segments/],
  ['spiffe://example.org/.', /dot segments/],
  ['spiffe://example.org/..', /dot segments/],
  ['spiffe://example.org/a/./b', /dot segments/],
  ['spiffe://example.org/a/../b', /dot segments/],
  ['spiffe://example.org/a/..', /dot segments/],
  ['spiffe://example.org/%2e%2e/x', SEG_CHAR],
  ['spiffe://example.org/a%20b', SEG_CHAR],
  ['spiffe://example.org/a?q=1', SEG_CHAR],
  ['spiffe://example.org/a#frag', SEG_CHAR],
  ['spiffe://example.org/a b', SEG_CHAR],
  ['spiffe://example.org/a,b', SEG_CHAR],
  ['spiffe://example.org/a:b', SEG_CHAR],
  ['spiffe://example.org/a@b', SEG_CHAR],
  ['spiffe://example.org/a\u0000b', SEG_CHAR],
  ['spiffe://example.org/a\nb', SEG_CHAR],
  ['spiffe://example.org/é', SEG_CHAR],
  ['spiffe://example.org/a~b', SEG_CHAR],
  ['spiffe://example.org/a+b', SEG_CHAR],
  ['spiffe://td1.test/evil, URI:spiffe://td1.test/spike/pilot/role/superuser', SEG_CHAR],
  // length
  ['spiffe://a/' + 'x'.repeat(MAX_SPIFFE_ID_LENGTH - 'spiffe://a/'.length), 'ok'],
  ['spiffe://a/' + 'x'.repeat(MAX_SPIFFE_ID_LENGTH - 'spiffe://a/'.length + 1), /longer than 2048/],
  ['spiffe://a/' + 'é'.repeat(1100), /longer than 2048/],
];

test('SPIFFE ID table has at least 40 cases covering accept and reject', () => {
  assert.ok(cases.length >= 40);
  assert.ok(cases.filter((c) => c[1] === 'ok').length >= 10);
});

for (const [input, expected] of cases) {
  const label = JSON.stringify(input.length > 60 ? input.slice(0, 40) + `…(${input.length})` : input);
  if (expected === 'ok') {
    test(`SpiffeId.parse accepts ${label}`, () => {
      const id = SpiffeId.parse(input);
      assert.equal(id.toString(), input);
      assert.ok(SpiffeId.parse(id.toString()).equals(id));
    });
  } else {
    test(`SpiffeId.parse rejects ${label}`, () => {
      assert.throws(
        () => SpiffeId.parse(input),
        (e: unknown) => {
          assert.ok(e instanceof SpiffeIdError);
          assert.equal(e.code, 'spiffeid_invalid');
          assert.match(e.message, expected);
          // The message never echoes the input.
          if (input.length > 8) assert.ok(!e.message.includes(input.slice(9, 30) || '\u0001'));
          return true;
        },
      );
    });
  }
}

test('SpiffeId parts, equality and membership', () => {
  const id = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
  assert.equal(id.trustDomain.name, 'spike.ist');
  assert.equal(id.path, '/spike/nexus');
  assert.deepEqual(id.segments(), ['spike', 'nexus']);
  assert.ok(id.memberOf(TrustDomain.parse('spike.ist')));
  assert.ok(!id.memberOf(TrustDomain.parse('spike.ist2')));
  assert.ok(id.equals(SpiffeId.parse('spiffe://spike.ist/spike/nexus')));
  assert.ok(!id.equals(SpiffeId.parse('spiffe://spike.ist/spike/Nexus')));
  assert.ok(!id.equals(SpiffeId.parse('spiffe://spike.ist/spike/nexus/x')));
  assert.equal(JSON.stringify({ id }), '{"id":"spiffe://spike.ist/spike/nexus"}');
  const bare = SpiffeId.parse('spiffe://spike.ist');
  assert.equal(bare.path, '');
  assert.deepEqual(bare.segments(), []);
});

test('TrustDomain.parse accepts a name or its ID form, rejects the rest', () => {
  assert.equal(TrustDomain.parse('example.org').name, 'example.org');
  assert.equal(TrustDomain.parse('spiffe://example.org').name, 'example.org');
  assert.equal(TrustDomain.parse('example.org').idString(), 'spiffe://example.org');
  assert.equal(String(TrustDomain.parse('example.org')), 'example.org');
  assert.ok(TrustDomain.parse('a.b').equals(TrustDomain.parse('spiffe://a.b')));
  assert.equal(TrustDomain.parse('a.b').id().toString(), 'spiffe://a.b');
  for (const bad of ['', 'Example.org', 'example.org:443', 'u@example.org', 'spiffe://example.org/path', 'spiffe:/example.org', 'https://example.org', 'a/b', 'spiffe://', 'a b']) {
    assert.throws(() => TrustDomain.parse(bad), SpiffeIdError, bad);
  }
});

test('SpiffeId.fromSegments validates every segment', () => {
  const td = TrustDomain.parse('td1.test');
  assert.equal(SpiffeId.fromSegments(td).toString(), 'spiffe://td1.test');
  assert.equal(SpiffeId.fromSegments(td, 'spike', 'nexus').toString(), 'spiffe://td1.test/spike/nexus');
  for (const bad of ['', '.', '..', 'a/b', 'a b', '%2e', 'a?b', 'a#b']) {
    assert.throws(() => SpiffeId.fromSegments(td, 'ok', bad), SpiffeIdError, JSON.stringify(bad));
  }
  assert.throws(() => SpiffeId.fromSegments(td, 'x'.repeat(2048)), /longer than 2048/);
});

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const segChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_'.split(''));
const tdArb = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
const segArb = fc
  .string({ unit: segChar, minLength: 1, maxLength: 20 })
  .filter((s) => s !== '.' && s !== '..');

test('property: IDs built from valid segments round-trip through parse/toString', () => {
  fc.assert(
    fc.property(tdArb, fc.array(segArb, { maxLength: 8 }), (tdName, segs) => {
      const td = TrustDomain.parse(tdName);
      const id = SpiffeId.fromSegments(td, ...segs);
      const text = id.toString();
      assert.equal(text, 'spiffe://' + tdName + segs.map((s) => '/' + s).join(''));
      const back = SpiffeId.parse(text);
      assert.ok(back.equals(id));
      assert.equal(back.toString(), text);
      assert.deepEqual(back.segments(), segs);
    }),
    { numRuns: 500 },
  );
});

test('property: parse never throws anything but SpiffeIdError and accepted IDs re-serialise identically', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string().map((s) => 'spiffe://' + s)), (s) => {
      let id: SpiffeId;
      try {
        id = SpiffeId.parse(s);
      } catch (e) {
        assert.ok(e instanceof SpiffeIdError);
        return;
      }
      assert.equal(id.toString(), s);
    }),
    { numRuns: 1000 },
  );
});
