/**
 * Pattern analysis tests: the literal fast path and the required-prefix skip must agree with
 * what RE2 full match decides (properties against re2js itself); the compiled-pattern cache
 * follows the live policies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { pathArb, patternArb } from '../../../test/helpers/policy-fixtures.js';
import { literalOf, requiredPrefixOf } from './index.js';
import { MAX_PATTERN_PROGRAM, PatternCache, compileBounded, programSize } from './patterns.js';
import { PolicyEngine, PolicyError } from './index.js';
import { pol } from '../../../test/helpers/policy-fixtures.js';

test('literalOf: literal patterns are recognised exactly as RE2 full match would decide (property)', () => {
  assert.equal(literalOf('^spiffe://example\\.org/app/db$'), 'spiffe://example.org/app/db');
  assert.equal(literalOf('spike/system/acl'), 'spike/system/acl');
  assert.equal(literalOf('a\\$'), 'a$');
  assert.equal(literalOf('a\\\\$'), 'a\\'); // an escaped backslash, then the anchor
  assert.equal(literalOf('a.b'), null);
  assert.equal(literalOf('\\d'), null);
  assert.equal(literalOf('(?i)a'), null);
  const chars = fc.constantFrom('a', 'b', '/', '.', '\\.', '\\$', '\\\\', '^', '$', '*', '-', ':', '\\d', '|', '(', ')', '_');
  fc.assert(
    fc.property(fc.array(chars, { maxLength: 8 }).map((a) => a.join('')), fc.string({ unit: fc.constantFrom('a', 'b', '/', '.', '$', '\\', '-', ':', '_', '^'), maxLength: 6 }), (p, s) => {
      const lit = literalOf(p);
      if (lit === null) return;
      let re: RE2JS;
      try {
        re = RE2JS.compile(p);
      } catch {
        assert.fail(`literal pattern ${p} does not compile`);
      }
      assert.equal(re.matches(lit), true, `${p} must match its literal`);
      assert.equal(re.matches(s), s === lit, `${p} vs ${s}`);
    }),
    { numRuns: 3000 },
  );
});

test('requiredPrefixOf: every full match starts with the derived prefix (property)', () => {
  assert.equal(requiredPrefixOf('^spiffe://example\\.org/svc-1/.*$'), 'spiffe://example.org/svc-1/');
  assert.equal(requiredPrefixOf('spiffe://t/ab*'), 'spiffe://t/a');
  assert.equal(requiredPrefixOf('spiffe://t/a|x'), '');
  assert.equal(requiredPrefixOf('spiffe://t/(a|b)'), 'spiffe://t/');
  assert.equal(requiredPrefixOf('(?i)spiffe'), '');
  assert.equal(requiredPrefixOf('a\\.?b'), 'a');
  // attacker review: a `(` the scanner took for a group hid a top-level `|` (the policy was then skipped: a wrong deny)
  assert.equal(requiredPrefixOf('app/x\\Q(\\E|team/.*'), '');
  assert.equal(requiredPrefixOf('app/x[](]|team/.*'), '');
  assert.equal(requiredPrefixOf('app/x[^](]|team/.*'), '');
  assert.equal(requiredPrefixOf('app/[[:alpha:]]x|team/.*'), '');
  assert.equal(requiredPrefixOf('app/[[:alpha:](]x'), 'app/');
  const tokens = fc.constantFrom('a', 't', '/', '.*', '|', '(', ')', '[](]', '[^]a]', '[[:alpha:]]', '[(]', '\\Q(\\E', '\\Q|\\E', '\\(', '?', 'x');
  fc.assert(
    fc.property(fc.array(tokens, { maxLength: 8 }).map((a) => a.join('')), fc.string({ unit: fc.constantFrom('a', 't', '/', 'x', '(', '|', ']'), maxLength: 6 }), (p, s) => {
      let re: RE2JS;
      try {
        re = RE2JS.compile(p);
      } catch {
        return;
      }
      if (re.matches(s)) assert.ok(s.startsWith(requiredPrefixOf(p)), `${p} matched ${s}`);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(patternArb, pathArb, (p, s) => {
      const re = RE2JS.compile(p);
      if (re.matches(s)) assert.ok(s.startsWith(requiredPrefixOf(p)), `${p} matched ${s}`);
    }),
    { numRuns: 3000 },
  );
});

test('issue 17: the pattern cache is reference-counted, so memory follows the live policies', () => {
  let errors = 0;
  const cache = new PatternCache(() => errors++);
  const a = cache.acquire('^a.*$');
  assert.equal(cache.acquire('^a.*$'), a, 'one compiled form per distinct pattern');
  cache.acquire('^b$');
  assert.equal(cache.size, 2);
  cache.release('^a.*$');
  assert.equal(cache.size, 2, 'still used once');
  cache.release('^a.*$');
  cache.release('^b$');
  cache.release('^never-acquired$');
  assert.equal(cache.size, 0);
  assert.equal(cache.acquire('(a)\\1').matches('aa'), false, 'a pattern that does not compile matches nothing');
  assert.equal(errors, 1);
});

test('POL-05 / FI-13 / ENV-09: a pattern whose program exceeds MAX_PATTERN_PROGRAM is refused at write time and matches nothing when stored', () => {
  // This re2js exposes the program size; an upgrade that hides it must fail here, not silently unbound every pattern.
  assert.equal(programSize(RE2JS.compile('a{10}')), 12);
  const engine = new PolicyEngine();
  const id = '^spiffe://t/w$';
  // 10 characters, 4,002 instructions: ~300 ms per 500-character path before the first bound;
  // the rest are over 250 (`.*a.{250}`: a DFA state per character, see patterns.ts).
  for (const costly of ['(.?){1000}', '(.*a){300}', '([a-z]?){300}', '(a{1000}){1}b{100}', '(.?){200}'.repeat(2), '(.?){70}', '.*a.{250}', '[a-z0-9-]{300}']) {
    assert.equal(compileBounded(costly), 'too_complex', costly);
    assert.throws(() => engine.compile(pol('p', id, costly, ['read'])), (e: unknown) => e instanceof PolicyError && e.code === 'policy_path_pattern_too_complex', costly);
  }
  const longId = `^spiffe://t/${'(a?)'.repeat(100)}$`;
  assert.throws(() => engine.compile(pol('p', longId, 'a', ['read'])), (e: unknown) => e instanceof PolicyError && e.code === 'policy_spiffeid_pattern_too_complex');
  // Patterns people write stay inside the bound and are accepted (program sizes in patterns.ts).
  for (const ok of [
    '^tenants/[a-z0-9-]+/db/.*$', '^secrets/team-[a-z0-9-]+/(db|cache)/.*$', '^apps/(dev|prod|stage)/[^/]+/(db|cache)/.*$',
    '(.?){60}', 'a{240}', '[a-z0-9-]{200}',
    '^(payments|billing|ledger|fraud|checkout|cart|catalog|search|recs|users|auth|notifications)/[a-z0-9-]+/.*$',
    '^secrets/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.*$',
    '^spiffe://example\\.org/ns/[a-z0-9-]+/sa/[a-z0-9-]+$', '^spiffe://example\\.org/ns/prod-[a-z0-9-]+/sa/.*$',
  ]) {
    const re = compileBounded(ok);
    assert.ok(typeof re !== 'string', ok);
    assert.ok((programSize(re) ?? Infinity) <= MAX_PATTERN_PROGRAM, ok);
    assert.equal(engine.compile(pol('p', ok.startsWith('^spiffe') ? ok : id, ok.startsWith('^spiffe') ? 'a' : ok, ['read'])).pathPattern, ok.startsWith('^spiffe') ? 'a' : ok);
  }
  // A long literal SPIFFE ID is compared as a string, never run: no bound.
  const longLiteral = `^spiffe://t/${'segment-'.repeat(200)}x$`;
  assert.equal(engine.compile(pol('p', longLiteral, 'a', ['read'])).spiffeIdPattern, longLiteral);
  const k8s = '^spiffe://example\\.org/ns/[a-z0-9-]+/sa/[a-z0-9-]+$';
  assert.equal(engine.compile(pol('p', k8s, 'a', ['read'])).spiffeIdPattern, k8s);
  // A stored row over the bound (written by an older version, or straight into the store) matches nothing.
  let refused = 0;
  const cache = new PatternCache(() => refused++);
  const m = cache.acquire('(.?){1000}');
  assert.equal(m.matches('a'.repeat(500)), false);
  assert.equal(m.matches(''), false);
  assert.equal(refused, 1);
});
