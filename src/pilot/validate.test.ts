/** Argument checks and output formatting of the `spike` CLI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { PilotError } from './errors.js';
import { checkSecretPath, parsePairs, parseVersionList, parsePermissions, parseNonNegInt, parseVersionByte, checkPolicyName } from './validate.js';
import { formatTime, parseFormat, render, toYaml } from './format.js';
import { humanMetadata, humanSecret, metadataDocument } from './secret.js';
import { humanPolicy, humanPolicyList, policyDocument, policyFromFlags, policyFromYaml } from './policy.js';
import type { SecretMetadata } from '../sdk/index.js';

function usage(fn: () => unknown, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PilotError);
    if (re) assert.match(e.message, re);
    return true;
  });
}

test('secret paths: SPIKE charset and 500-char cap, plus D2 (no empty/dot segments, no leading/trailing slash)', () => {
  for (const ok of ['secrets/db/creds', 'a', 'a.b/c-d_e', 'x'.repeat(500), 'tenants/(x)/[y]']) assert.equal(checkSecretPath(ok), ok);
  const cases: Array<[string, string]> = [
    ['', 'it is empty'],
    ['/a', "it starts with '/'"],
    ['a/', "it ends with '/'"],
    ['a//b', "it has an empty segment ('//')"],
    ['a/./b', "it has a '.' or '..' segment"],
    ['a/../b', "it has a '.' or '..' segment"],
    ['..', "it has a '.' or '..' segment"],
    ['a b', 'character 2 is not allowed'],
    ['ab\nc', 'character 3 is not allowed'],
    ['a^b', 'character 2 is not allowed'],
    ['x'.repeat(501), 'it is longer than 500 characters'],
    ['é', 'character 1 is not allowed'],
    ['spike/system/acl', 'spike/system is reserved'],
  ];
  for (const [bad, rule] of cases) {
    assert.throws(
      () => checkSecretPath(bad),
      (e: unknown) => e instanceof PilotError && e.message.startsWith(`Error: Invalid secret path: ${rule}`) && (bad.length < 3 || !e.message.includes(bad)),
      JSON.stringify(bad),
    );
  }
});

test('key=value pairs: split at the first "=", null-prototype map, bad pairs stop the command without echoing them', () => {
  const m = parsePairs(['username=admin', 'password=a=b=c', '__proto__=x', 'empty=']);
  assert.equal(Object.getPrototypeOf(m), null);
  assert.deepEqual({ ...m }, { username: 'admin', password: 'a=b=c', ['__proto__']: 'x', empty: '' });
  assert.equal(m['__proto__'], 'x');
  usage(() => parsePairs(['password:s3cret']), /argument 2/);
  usage(() => parsePairs(['ok=1', '=novalue']), /argument 3/);
  usage(() => parsePairs(['bad/key=1']), /Invalid key name/);
  usage(() => parsePairs(['k=1', 'k=2']), /Duplicate key/);
  try {
    parsePairs(['password:s3cret']);
  } catch (e) {
    assert.ok(!(e as Error).message.includes('s3cret'), 'the pair is never echoed');
  }
});

test('version lists and integers (SPIKE messages)', () => {
  assert.deepEqual(parseVersionList('0'), [0]);
  assert.deepEqual(parseVersionList('1, 2,3'), [1, 2, 3]);
  usage(() => parseVersionList('-1'), /Negative version number/);
  usage(() => parseVersionList('1,x'), /Invalid version number/);
  usage(() => parseVersionList('1,,2'), /Invalid version number/);
  usage(() => parseVersionList('1.5'), /Invalid version number/);
  assert.equal(parseNonNegInt('7', '--version'), 7);
  usage(() => parseNonNegInt('07', '--version'));
  usage(() => parseNonNegInt('1e3', '--cas'));
  assert.equal(parseVersionByte('0'), 0);
  assert.equal(parseVersionByte(' 255 '), 255);
  for (const v of ['256', '-1', '1e2', '1.0', '01', '', 'x']) usage(() => parseVersionByte(v), /Invalid --version, must be 0-255/);
});

test('permissions: SPIKE ValidatePermissions (split, trim, drop empties, known only, non-empty)', () => {
  assert.deepEqual(parsePermissions('read, write,,list'), ['read', 'write', 'list']);
  assert.deepEqual(parsePermissions(['execute', 'super']), ['execute', 'super']);
  usage(() => parsePermissions('read,admin'), /invalid permission: 'admin'. valid permissions: 'read, write, list, execute, super'/);
  usage(() => parsePermissions(' , '), /no permissions/);
  checkPolicyName('db-read policy_1');
  usage(() => checkPolicyName('a/b'));
  usage(() => checkPolicyName(''));
});

test('CLI: --format / -f aliases and --json', () => {
  for (const h of [undefined, '', 'human', 'h', 'plain', 'p', 'HUMAN']) assert.equal(parseFormat(h), 'human');
  for (const j of ['json', 'j']) assert.equal(parseFormat(j), 'json');
  for (const y of ['yaml', 'y']) assert.equal(parseFormat(y), 'yaml');
  assert.equal(parseFormat(undefined, true), 'json');
  assert.equal(parseFormat('j', true), 'json');
  usage(() => parseFormat('xml'), /^Error: invalid format 'xml'. Valid formats are: /);
  usage(() => parseFormat('yaml', true), /--json/);
});

test('secret get output: human sorted lines, json indented, yaml map', () => {
  const v = { username: 'admin', password: 's3cret' };
  assert.equal(render('human', v, () => humanSecret(v)), 'password: s3cret\nusername: admin\n');
  assert.equal(render('json', v, () => ''), '{\n  "username": "admin",\n  "password": "s3cret"\n}\n');
  assert.deepEqual(YAML.parse(render('yaml', v, () => '')), v);
  assert.equal(toYaml([]), '[]\n');
  assert.equal(render('json', [], () => ''), '[]\n');
});

test('secret metadata output: SPIKE blocks in human form, struct in json/yaml, versions in numeric order', () => {
  const m: SecretMetadata = {
    versions: Object.assign(Object.create(null) as Record<string, never>, {
      '10': { version: 10, createdTime: '2026-07-25T10:00:10Z', deletedTime: null },
      '2': { version: 2, createdTime: '2026-07-25T10:00:02Z', deletedTime: '2026-07-25T11:00:00+02:00' },
    }),
    metadata: { currentVersion: 10, oldestVersion: 2, createdTime: '2026-07-25T10:00:02Z', updatedTime: '2026-07-25T10:00:10Z', maxVersions: 10 },
  };
  const h = humanMetadata(m);
  assert.match(h, /^\nMetadata:\n-{50}\nCurrent Version : 10\nOldest Version  : 2\nCreated Time    : 2026-07-25T10:00:02Z\n/);
  assert.ok(h.indexOf('Version 2:') < h.indexOf('Version 10:'));
  assert.match(h, /Version 2:\n {2}Created: 2026-07-25T10:00:02Z\n {2}Deleted: 2026-07-25T09:00:00Z\n/);
  const doc = metadataDocument(m);
  assert.deepEqual(Object.keys(doc['versions'] as object), ['2', '10']);
  assert.deepEqual(JSON.parse(render('json', doc, () => '')), JSON.parse(JSON.stringify(doc)));
  assert.equal(formatTime('garbage'), 'garbage');
  // one time format everywhere: RFC 3339 in UTC, to the second, whatever offset or fraction Nexus sent
  assert.equal(formatTime('2026-07-25T10:00:00.123456789-07:00'), '2026-07-25T17:00:00Z');
  assert.equal((doc['versions'] as Record<string, { deletedTime: string }>)['2']!.deletedTime, '2026-07-25T09:00:00Z');
});

test('policy output: SPIKE human blocks; json/yaml with spiffiedPattern', () => {
  const p = { id: '', name: 'db-read', spiffeIdPattern: '^spiffe://x/app$', pathPattern: '^db/.*$', permissions: ['read', 'list'] as ('read' | 'list')[], createdAt: '2026-07-25T10:00:00Z', updatedAt: '2026-07-25T10:00:00Z' };
  assert.equal(policyDocument(p)['id'], 'db-read', 'a policy id is its name');
  assert.equal(
    humanPolicy(p),
    'POLICY DETAILS\n==============\n\nName: db-read\nSPIFFE ID Pattern: ^spiffe://x/app$\nPath Pattern: ^db/.*$\nPermissions: read, list\nCreated At: 2026-07-25T10:00:00Z\nUpdated At: 2026-07-25T10:00:00Z\n',
  );
  assert.deepEqual(Object.keys(policyDocument(p)), ['id', 'name', 'spiffiedPattern', 'pathPattern', 'permissions', 'createdAt', 'updatedAt']);
  assert.equal(humanPolicyList([]), 'No policies found.\n');
  assert.equal(humanPolicyList([{ name: 'a' }]), 'POLICIES\n========\n\nName: a\n--------\n\n');
});

test('policy create/apply inputs: required flags, YAML keys', () => {
  usage(() => policyFromFlags({ name: 'a' }), /^Error: All flags are required \(missing: --path-pattern, --spiffeid-pattern, --permissions\)\.$/);
  const spec = policyFromYaml('name: db\nspiffeidPattern: ^spiffe://x/.*$\npathPattern: ^db/.*$\npermissions:\n  - read\n  - write\n');
  assert.deepEqual(spec, { name: 'db', spiffeIdPattern: '^spiffe://x/.*$', pathPattern: '^db/.*$', permissions: ['read', 'write'] });
  assert.deepEqual(policyFromYaml('name: db\nspiffeidPattern: spiffe://x/a\npathPattern: b\npermissions: read,list\n').permissions, ['read', 'list']);
  usage(() => policyFromYaml('name: db\nspiffeidPattern: a\npathPattern: b\npermissions: read\n'), /^Error: Invalid spiffeidPattern in the policy file: it must start with 'spiffe:\/\/'/);
  usage(() => policyFromYaml('name: db\nspiffeIdPattern: a\npathPattern: b\npermissions: [read]\n'), /unknown key 'spiffeIdPattern'/);
  usage(() => policyFromYaml('name: db\n'), /missing spiffeidPattern, pathPattern, permissions/);
  usage(() => policyFromYaml('- a\n- b\n'), /expected a mapping/);
  usage(() => policyFromYaml('name: &a db\nspiffeidPattern: *a\npathPattern: b\npermissions: [read]\n'), /not valid YAML/);
  usage(() => policyFromYaml('name: a\nname: b\n'), /not valid YAML/);
});
