/** URL lists, role recognisers and the status → code table of the SDK. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codeForBodyErr, codeForStatus, sanitizeWireCode } from './errors.js';
import { clientRoles } from './roles.js';
import { DEFAULT_NEXUS_URL, nexusUrlsFromEnv, parseNexusUrls } from './urls.js';

test('SPIKE_NEXUS_API_URL: default, comma-separated list, base path kept, trailing slash dropped', () => {
  assert.deepEqual(nexusUrlsFromEnv({}), [DEFAULT_NEXUS_URL]);
  const urls = parseNexusUrls(nexusUrlsFromEnv({ SPIKE_NEXUS_API_URL: ' https://a:8553 , https://b:8553/prefix/ ' }));
  assert.deepEqual(urls, [
    { origin: 'https://a:8553', basePath: '' },
    { origin: 'https://b:8553', basePath: '/prefix' },
  ]);
});

test('bad URL lists are refused before anything is sent', () => {
  for (const bad of ['http://a:1', 'https://u:p@a', 'https://a/?q=1', 'https://a/#f', 'nope', 'https://a,', 'https://a,https://a/', '']) {
    assert.throws(() => parseNexusUrls([bad]), (e: unknown) => (e as { code?: string }).code === 'sdk_bad_url' || (e as { code?: string }).code === 'sdk_no_urls', bad);
  }
  assert.deepEqual(parseNexusUrls(['http://127.0.0.1:9'], true), [{ origin: 'http://127.0.0.1:9', basePath: '' }]);
});

test('HTTP status → SDK code (plus 409 → api_conflict)', () => {
  const table: [number, string][] = [
    [400, 'api_bad_request'],
    [401, 'access_unauthorized'],
    [404, 'api_not_found'],
    [409, 'api_conflict'],
    [413, 'api_bad_request'],
    [503, 'state_not_ready'],
    [500, 'net_peer_connection'],
    [502, 'net_peer_connection'],
    [418, 'net_peer_connection'],
  ];
  for (const [status, code] of table) assert.equal(codeForStatus(status), code, String(status));
  assert.equal(codeForBodyErr('api_not_found'), 'api_not_found');
  assert.equal(codeForBodyErr('something_new'), 'gen_general_failure');
  assert.equal(sanitizeWireCode('shamir_verify_failed'), 'shamir_verify_failed');
  assert.equal(sanitizeWireCode('a b'), undefined);
  assert.equal(sanitizeWireCode('x'.repeat(65)), undefined);
});

test('role recognisers: exact or prefix + "/", per trust root; look-alikes and other domains refused', () => {
  const r = clientRoles({ SPIKE_TRUST_ROOT_PILOT: 'td1.test, td3.test', SPIKE_TRUST_ROOT_NEXUS: 'td1.test' });
  assert.equal(r.isPilotOperator('spiffe://td1.test/spike/pilot/role/superuser'), true);
  assert.equal(r.isPilotOperator('spiffe://td3.test/spike/pilot/role/superuser/alice'), true);
  assert.equal(r.isPilotOperator('spiffe://td1.test/spike/pilot/role/superuser-x'), false);
  assert.equal(r.isPilotOperator('spiffe://td2.test/spike/pilot/role/superuser'), false);
  assert.equal(r.isPilotRecover('spiffe://td1.test/spike/pilot/role/superuser'), false);
  assert.equal(r.isPilotRestore('spiffe://td1.test/spike/pilot/role/restore'), true);
  assert.equal(r.isNexus('spiffe://td1.test/spike/nexus/instance-1'), true);
  assert.equal(r.isNexus('spiffe://td1.test/spike/nexusX'), false);
  assert.equal(r.isNexus('spiffe://td3.test/spike/nexus'), false);
  assert.equal(clientRoles({}).isNexus('spiffe://spike.ist/spike/nexus'), true);
});

test('gaps A9: an empty entry in a trust-root list is an error, not a crash later', () => {
  assert.throws(() => clientRoles({ SPIKE_TRUST_ROOT_PILOT: 'a.org,' }), { code: 'sdk_bad_argument' });
  assert.throws(() => clientRoles({ SPIKE_TRUST_ROOT_NEXUS: 'UPPER.case' }), { code: 'sdk_bad_argument' });
  assert.equal(clientRoles({ SPIKE_TRUST_ROOT_PILOT: '  ' }).pilotOperatorId, 'spiffe://spike.ist/spike/pilot/role/superuser');
  assert.equal(clientRoles({}).isPilotOperator('not an id'), false);
});

test('a bad Nexus URL names its position and the rule it broke, never the URL (it may carry credentials)', () => {
  const cases: Array<[string[], RegExp]> = [
    [['http://nexus:8553'], /^invalid SPIKE Nexus URL \(must be https:.*\): it has the scheme "http:"$/],
    [['https://a:8553', 'https://user:pw-7f3a@b:8553'], /: entry 2 of 2 carries credentials$/],
    [['https://a:8553?x=1'], /: it has a query or fragment$/],
    [['not a url'], /: it is not a URL$/],
    [['https://a:1,,https://b:2'], /: entry 2 of 3 is empty$/],
    [['https://a:1', 'https://a:1/'], /: entry 2 of 2 repeats an earlier one$/],
  ];
  for (const [list, re] of cases) {
    assert.throws(() => parseNexusUrls(list), (e: unknown) => {
      const m = (e as { message?: string }).message ?? '';
      return (e as { code?: string }).code === 'sdk_bad_url' && re.test(m) && !m.includes('pw-7f3a');
    }, list.join(','));
  }
});
