/**
 * What a refused policy write answers (POL-06, D3): the policy checks through the
 * route layer's mapping are 400 `api_bad_request`, never 500, and never echo the pattern.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../protocol/errors.js';
import { pol } from '../../../test/helpers/policy-fixtures.js';
import { POLICY_ERRORS, PolicyError, type PolicyErrorCode, type PolicyLike, PolicyEngine } from '../policy/index.js';
import { policyErrorToApi, viaPolicy } from './policy-errors.js';

test('POL-06 (dialect subset): what re2js cannot compile is a 400 at write time; the message never echoes the pattern', () => {
  const engine = new PolicyEngine();
  for (const bad of ['(a)\\1', '(?=x)', '(?!x)', '(?<=a)b', '\\C', '*', 'a{1001}', '(', 'a)(', '[z-a]', '\\8']) {
    assert.throws(
      () => viaPolicy(() => engine.compile(pol('p', 'spiffe://t/w', bad, ['read']))),
      (e: unknown) => e instanceof ApiError && e.status === 400 && e.code === 'api_bad_request' && !e.message.includes(bad),
      bad,
    );
  }
  // `(?P<n>x)` compiles on re2js, but SPIKE's path-pattern charset has no `<`/`>`: 400 as in SPIKE.
  assert.throws(() => viaPolicy(() => engine.compile(pol('p', 'spiffe://t/w', '(?P<n>x)', ['read']))), ApiError);
  for (const ok of ['(?i)secrets/.*', 'a{3}', '[a-z]+/\\d']) {
    assert.equal(engine.compile(pol('p', 'spiffe://t/w', ok, ['read'])).pathPattern, ok);
  }
  // stored rows that do not compile simply match nothing
  engine.load([pol('broken', 'spiffe://t/w', '(a)\\1', ['read']), pol('ok', 'spiffe://t/w', 'a', ['read'])], 1);
  assert.equal(engine.allows('spiffe://t/w', 'aa', 'read'), false);
  assert.equal(engine.allows('spiffe://t/w', 'a', 'read'), true);
});

test('compile: name, patterns, permissions are validated (400)', () => {
  const engine = new PolicyEngine();
  const cases: PolicyLike[] = [
    pol('', 'spiffe://t/w', 'a', ['read']),
    pol('bad/name', 'spiffe://t/w', 'a', ['read']),
    pol('p', '.*', 'a', ['read']),
    pol('p', 'spiffe://t/w', '', ['read']),
    pol('p', 'spiffe://t/w', 'a b', ['read']),
    pol('p', 'spiffe://t/w', 'a\nb', ['read']),
    pol('p', 'spiffe://t/w', 'a', []),
    pol('p', 'spiffe://t/w', 'a', ['READ']),
  ];
  for (const c of cases) assert.throws(() => viaPolicy(() => engine.compile(c)), (e: unknown) => e instanceof ApiError && e.status === 400, JSON.stringify(c));
  assert.deepEqual(engine.compile(pol('p', 'spiffe://t/w', 'a', ['write', 'read', 'read'])).permissions, ['read', 'write']);
  const viaWire = engine.compileRequest({ name: 'db-read', spiffeidPattern: '^spiffe://example\\.org/app/db$', pathPattern: '^tenants/demo/db/.*$', permissions: ['read'] });
  assert.equal(viaWire.spiffeIdPattern, '^spiffe://example\\.org/app/db$');
});

test('every policy error code has its pinned wire answer (400 api_bad_request, exposed fixed message, reason)', () => {
  const expected: Record<PolicyErrorCode, [reason: string, message: string]> = {
    policy_invalid_name: ['invalid_name', 'invalid policy name'],
    policy_invalid_spiffeid_pattern: ['invalid_pattern', 'invalid SPIFFE ID pattern'],
    policy_invalid_path_pattern: ['invalid_pattern', 'invalid path pattern'],
    policy_invalid_permissions: ['invalid_permission', 'invalid permissions'],
    policy_spiffeid_pattern_not_compiled: ['invalid_pattern', 'SPIFFE ID pattern does not compile'],
    policy_path_pattern_not_compiled: ['invalid_pattern', 'path pattern does not compile'],
    policy_spiffeid_pattern_too_complex: ['invalid_pattern', 'SPIFFE ID pattern is too complex'],
    policy_path_pattern_too_complex: ['invalid_pattern', 'path pattern is too complex'],
  };
  assert.deepEqual(Object.keys(expected).sort(), Object.keys(POLICY_ERRORS).sort());
  for (const [code, [reason, message]] of Object.entries(expected) as Array<[PolicyErrorCode, [string, string]]>) {
    const e = policyErrorToApi(new PolicyError(code));
    assert.deepEqual([e.status, e.code, e.reason, e.message, e.expose], [400, 'api_bad_request', reason, message, true], code);
  }
  // anything else passes through unchanged
  const other = new Error('x');
  assert.throws(() => viaPolicy(() => { throw other; }), (e: unknown) => e === other);
});
