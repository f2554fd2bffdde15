/** Policy patterns checked before sending: which rule broke, or that it does not compile and where. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PilotError } from './errors.js';
import { checkPolicyPatterns, compileProblem } from './patterns.js';

function refuses(spec: { pathPattern: string; spiffeIdPattern: string }, re: RegExp): void {
  assert.throws(() => checkPolicyPatterns(spec), (e: unknown) => e instanceof PilotError && e.exitCode === 2 && re.test(e.message), JSON.stringify(spec));
}

const ID = '^spiffe://spike\\.ist/app$';

test('patterns that compile pass; compile errors say what and where (character and fragment)', () => {
  checkPolicyPatterns({ pathPattern: '^secrets/app/.*$', spiffeIdPattern: ID });
  assert.equal(compileProblem('^a/.*$'), undefined);
  assert.equal(compileProblem('(a)\\1'), 'invalid escape sequence at character 4: `\\1`');
  // unbalanced parentheses: re2js names the whole pattern, so no (wrong) position is given
  assert.equal(compileProblem('abc('), 'missing closing ): `abc(`');
  assert.equal(compileProblem('^secrets/db)$'), 'unexpected ): `^secrets/db)$`');
  assert.equal(compileProblem('*'), 'missing argument to repetition operator at character 1: `*`', 'a one-token pattern keeps its position');
  assert.equal(compileProblem('a**'), 'invalid nested repetition operator at character 2: `**`');
  refuses({ pathPattern: '(a)\\1', spiffeIdPattern: ID }, /^Error: Invalid --path-pattern: it does not compile \(invalid escape sequence at character 4: `\\1`\)\.$/);
  refuses({ pathPattern: '[z-a]', spiffeIdPattern: ID }, /^Error: Invalid --path-pattern: it does not compile \(invalid character class range at character 2: `z-a`\)\.$/);
  refuses({ pathPattern: '^a$', spiffeIdPattern: '^spiffe://x/(a$' }, /^Error: Invalid --spiffeid-pattern: it does not compile \(missing closing \)/);
});

test('grammar rules are named: characters, length, spiffe:// prefix', () => {
  refuses({ pathPattern: 'a b', spiffeIdPattern: ID }, /^Error: Invalid --path-pattern: character 2 is not allowed/);
  refuses({ pathPattern: '', spiffeIdPattern: ID }, /^Error: Invalid --path-pattern: it is empty\.$/);
  refuses({ pathPattern: 'a'.repeat(501), spiffeIdPattern: ID }, /longer than 500 characters/);
  refuses({ pathPattern: '^a$', spiffeIdPattern: 'spiffe:/x' }, /^Error: Invalid --spiffeid-pattern: it must start with 'spiffe:\/\/'/);
  refuses({ pathPattern: '^a$', spiffeIdPattern: 'spiffe://x/a b' }, /^Error: Invalid --spiffeid-pattern: it must be spiffe:\/\/<trust domain>/);
  // control characters in a fragment are made printable
  assert.ok(!/[\u0000-\u001f]/.test(compileProblem('(\u0007') ?? ''));
});

test('a pattern over the complexity bound Nexus enforces is refused here first, with its size and what to write instead', () => {
  refuses({ pathPattern: '^secrets/[a-z0-9-]{300}$', spiffeIdPattern: ID },
    /^Error: Invalid --path-pattern: it is too complex \(\d+ regex instructions, at most 250; write \+ or \* instead of long counted repetitions such as \{300\}\)\.$/);
  // What people write passes; so does a long literal (compared as a string, never run).
  checkPolicyPatterns({ pathPattern: '^secrets/[a-z0-9-]{200}$', spiffeIdPattern: ID });
  checkPolicyPatterns({ pathPattern: `^secrets/${'a'.repeat(400)}$`, spiffeIdPattern: ID });
});
