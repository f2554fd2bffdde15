/**
 * The write-time policy checks on their own (D3): each refusal is a typed
 * {@link PolicyError} with its stable code and fixed message, with no HTTP in sight. The wire
 * answers of the same refusals are tested in src/nexus/routes/policy-errors.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pol } from '../../../test/helpers/policy-fixtures.js';
import { compilePolicy, POLICY_ERRORS, PolicyError, type PolicyErrorCode, type PolicyLike } from './index.js';

const refusedWith = (input: PolicyLike, code: PolicyErrorCode): void => {
  assert.throws(
    () => compilePolicy(input),
    (e: unknown) => e instanceof PolicyError && e.code === code && e.message === POLICY_ERRORS[code],
    JSON.stringify(input),
  );
};

test('each refusal has its stable code; the checks run in SPIKE order (name, identity, path, permissions, compile)', () => {
  refusedWith(pol('', 'spiffe://t/w', 'a', ['read']), 'policy_invalid_name');
  refusedWith(pol('bad/name', '.*', '', []), 'policy_invalid_name');
  refusedWith(pol('p', '.*', 'a', ['read']), 'policy_invalid_spiffeid_pattern');
  refusedWith(pol('p', '^spiffe://td/admin|zzz$', 'x', ['read']), 'policy_invalid_spiffeid_pattern');
  refusedWith(pol('p', 'spiffe://t/w', '', ['read']), 'policy_invalid_path_pattern');
  refusedWith(pol('p', 'spiffe://t/w', 'a\nb', []), 'policy_invalid_path_pattern');
  refusedWith(pol('p', 'spiffe://t/w', 'a', []), 'policy_invalid_permissions');
  refusedWith(pol('p', 'spiffe://t/w', '(', ['READ']), 'policy_invalid_permissions');
  refusedWith(pol('p', 'spiffe://t/(w', '(', ['read']), 'policy_spiffeid_pattern_not_compiled');
  refusedWith(pol('p', 'spiffe://t/w', '(a)\\1', ['read']), 'policy_path_pattern_not_compiled');
});

test('a refusal never carries the refused input', () => {
  const pattern = 'secret-looking-(a)\\1';
  assert.throws(
    () => compilePolicy(pol('p', 'spiffe://t/w', pattern, ['read'])),
    (e: unknown) => e instanceof PolicyError && !e.message.includes(pattern) && !e.message.includes('secret-looking'),
  );
});

test('accepted policies come back frozen, permissions deduplicated in canonical order', () => {
  const c = compilePolicy(pol('p', 'spiffe://t/w', 'a', ['super', 'write', 'read', 'read']));
  assert.deepEqual(c.permissions, ['read', 'write', 'super']);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.permissions));
});
