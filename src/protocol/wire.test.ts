/**
 * Tests for schemas, validators, wire request types and the Go JSON encoder
 * (SEC-05, SEC-07, SEC-09, SEC-10, SEC-11, POL-08..POL-15, POL-18).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiError } from './errors.js';
import { Bytes32, GoTime, goJsonString, parseBody, s, type Schema } from '../http/index.js';
import { isValidName, isValidPathPattern, isValidSecretPath, isValidSpiffeIdPattern, validatePermissions, validateRestoreId, ERROR_SHAPES, PolicyPutRequest, RestoreRequest, SecretGetRequest, SecretPutRequest, SecretVersionsRequest, ShardContributeRequest, CipherDecryptRequest, BootstrapVerifyRequest, intKeyedMap, policyGetResponse } from './index.js';

const body = <T>(schema: Schema<T>, text: string): T => parseBody(schema, Buffer.from(text));
const is400 = (e: unknown): boolean => e instanceof ApiError && e.status === 400 && e.code === 'api_bad_request';
const bad = <T>(schema: Schema<T>, text: string): void => {
  assert.throws(() => body(schema, text), is400, text);
};

test('POL-09/POL-10/POL-11/POL-12/POL-08/POL-18: secret path grammar (D2), never normalised', () => {
  for (const ok of ['a', 'secrets/db/creds', 'tenants/demo/db/creds', 'apps/.*', 'a.b/c..d/...', 'x(1)/[y]{z}|q+?\\', 'spike/systemx', 'spike', 'a'.repeat(500)]) {
    assert.ok(isValidSecretPath(ok), ok);
  }
  for (const no of [
    '', ' ', '   ', 'a'.repeat(501), '/apps/a', 'apps/a/', 'apps//a', 'apps/a/../b', 'apps/./b', '..', '.', './a', 'a/..',
    'a\u0000b', 'a\nb', 'a\rb', 'a\tb', 'a b', 'caf\u00e9', 'cafe\u0301', 'ｓｅｃｒｅｔｓ', 'a\u200db', '\u202eab', 'ѕecrets', 'a^b', 'a$',
    'a%2Fb', 'spike/system', 'spike/system/acl', 'spike/system/secret', 'spike/system/cipher/exec', 'spike/system/x/y',
  ]) {
    assert.equal(isValidSecretPath(no), false, JSON.stringify(no));
  }
});

test('POL-10: the validated path string is handed on byte-identical (no normalisation)', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9._\-()?+*|[\]{}]{1,8}(\/[a-z0-9._\-()?+*|[\]{}]{1,8}){0,4}$/), (p) => {
      if (!isValidSecretPath(p)) return;
      const req = body(SecretGetRequest, JSON.stringify({ path: p }));
      assert.equal(req.path, p);
    }),
    { numRuns: 300 },
  );
});

test('POL-15/SEC-11: names are 1..250 of [a-zA-Z0-9-_ ], byte-exact', () => {
  for (const ok of ['a', 'admin', 'admin ', 'db-read_1', 'A'.repeat(250), 'has space']) assert.ok(isValidName(ok), ok);
  for (const no of ['', 'A'.repeat(251), '../x', 'admin\u0000', 'ключ', 'a\nb', 'a.b', 'a/b']) assert.equal(isValidName(no), false, no);
});

test('POL-14: permissions — empty, unknown, wrong case rejected; duplicates collapse', () => {
  for (const no of [[], ['admin'], ['READ'], ['read', 'Write'], [' read']]) {
    assert.throws(() => validatePermissions(no), is400, JSON.stringify(no));
  }
  assert.deepEqual(validatePermissions(['write', 'read', 'read']), ['read', 'write']);
  assert.deepEqual(validatePermissions(['super', 'execute', 'list']), ['list', 'execute', 'super']);
  // "read" as a string (not an array) is a schema error.
  bad(PolicyPutRequest, '{"name":"p","spiffeidPattern":"spiffe://a/b","pathPattern":"x","permissions":"read"}');
});

test('SPIKE SPIFFE-ID pattern and path pattern grammars', () => {
  for (const ok of ['spiffe://example\\.org/app/db', '^spiffe://example\\.org/app/db$', 'spiffe://.*', '^spiffe://td/admin', 'spiffe://[a-z]+/x_y/(a|b)?'.replace('|', '')]) {
    assert.ok(isValidSpiffeIdPattern(ok), ok);
  }
  for (const no of ['', '.*', 'spiffe:/x', 'http://x', 'spiffe://a|b', '^spiffe://td/admin|zzz$', 'spiffe://a/', 'spiffe://a$b', 'spiffe://a\nb', 'SPIFFE://a', 'spiffe://a{2}']) {
    assert.equal(isValidSpiffeIdPattern(no), false, no);
  }
  for (const ok of ['^tenants/demo/db/.*$', 'secrets/db', '.*', '(a|b){3}\\d']) assert.ok(isValidPathPattern(ok), ok);
  for (const no of ['', 'a'.repeat(501), 'a b', 'a\nb', 'é', 'a#b', 'a,b']) assert.equal(isValidPathPattern(no), false, no);
});

test('SEC-05: wrong types are rejected under strict schemas', () => {
  for (const v of ['[]', '"x"', 'null', '{"k":1}', '{"k":{}}', '{"k":true}', '{"k":null}']) {
    bad(SecretPutRequest, `{"path":"a/b","values":${v}}`);
  }
  for (const p of ['1', '["a"]', '{}', 'null', 'true']) bad(SecretPutRequest, `{"path":${p},"values":{}}`);
  bad(SecretPutRequest, '[]');
  bad(SecretPutRequest, '"x"');
  bad(SecretPutRequest, 'null');
  bad(SecretPutRequest, '{"path":"a","values":{"bad key!":"v"}}');
  const ok = body(SecretPutRequest, '{"path":"a/b","values":{"username":"admin","password":"s3cret"},"unknown":{"deep":[1,2]}}');
  assert.deepEqual([...ok.values.entries()], [['username', 'admin'], ['password', 's3cret']]);
  assert.equal(ok.cas, undefined);
});

test('SEC-06: prototype-named value keys are stored as data, not as prototype changes', () => {
  const req = body(SecretPutRequest, '{"path":"a","values":{"__proto__":"1","constructor":"2","prototype":"3","toString":"4","hasOwnProperty":"5"}}');
  assert.deepEqual([...req.values.keys()], ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('SEC-07: only own members are read; an inherited-looking path is missing', () => {
  bad(SecretPutRequest, '{"__proto__":{"path":"spike/system/acl"},"values":{"k":"v"}}');
});

test('schema: a case-variant of a known field is rejected (Go would have used it)', () => {
  bad(SecretGetRequest, '{"path":"a","PATH":"b"}');
  bad(SecretGetRequest, '{"Path":"a"}');
  // Go folds Unicode case too: U+017F (long s) is `s`, U+212A (Kelvin sign) is `k` (attacker review)
  bad(SecretPutRequest, '{"path":"a","values":{"k":"v"},"value\u017f":{"k":"w"}}');
  bad(SecretGetRequest, '{"path":"a","version":1,"ver\u017fion":9}');
  bad(PolicyPutRequest, '{"name":"p","spiffeidPattern":"^spiffe://x/a$","\u017fpiffeidPattern":"^spiffe://.*$","pathPattern":"^a$","permissions":["read"]}');
  bad(SecretGetRequest, '{"path":"a","version":1,"\u212aey":1,"VERSION":3}');
  // … and only as Go folds: JavaScript's full mappings (ı → i, ß → ss) make unknown members to Go, ignored
  assert.equal(body(SecretGetRequest, '{"path":"a","version":2,"ver\u0131ion":9}').version, 2);
  assert.equal(body(SecretGetRequest, '{"path":"a","\u00dfpath":"x","pat\u0131":"y"}').path, 'a');
});

test('SEC-09: versions must be non-negative safe integers written as integers; 0/absent = current', () => {
  for (const v of ['-1', '1.5', '"1"', '1e400', '9007199254740993', 'null', 'true', '[]']) bad(SecretGetRequest, `{"path":"a","version":${v}}`);
  // Go's encoding/json refuses a fraction or an exponent for an int field, even when the value is whole.
  for (const v of ['1e2', '1E0', '1.0', '0.0', '2e-0', '-0.0']) bad(SecretGetRequest, `{"path":"a","version":${v}}`);
  bad(SecretVersionsRequest, '{"path":"a","versions":[1,1.0]}');
  assert.equal(body(SecretGetRequest, '{"path":"a"}').version, 0);
  assert.equal(body(SecretGetRequest, '{"path":"a","version":2147483648}').version, 2147483648);
  assert.equal(body(SecretGetRequest, '{"path":"a","version":-0}').version, 0);
  // A member nobody reads may hold any valid number, as in Go.
  assert.equal(body(SecretGetRequest, '{"path":"a","version":3,"ratio":1.5e3}').version, 3);
});

test('SEC-10: versions lists — null/absent = [], > 100 entries or negatives rejected', () => {
  assert.deepEqual(body(SecretVersionsRequest, '{"path":"a","versions":null}').versions, []);
  assert.deepEqual(body(SecretVersionsRequest, '{"path":"a"}').versions, []);
  assert.deepEqual(body(SecretVersionsRequest, '{"path":"a","versions":[0,1,1]}').versions, [0, 1, 1]);
  bad(SecretVersionsRequest, `{"path":"a","versions":[${Array(101).fill(1).join(',')}]}`);
  bad(SecretVersionsRequest, '{"path":"a","versions":[-1]}');
  bad(SecretVersionsRequest, '{"path":"a","versions":[1.5]}');
});

test('G4/SSS-07: [32]byte fields need exactly 32 integers 0..255 and (for shards) not all zero', () => {
  const arr = (n: number, v = 7) => `[${Array(n).fill(v).join(',')}]`;
  assert.equal(body(ShardContributeRequest, `{"shard":${arr(32)}}`).shard.length, 32);
  for (const sh of [arr(31), arr(33), arr(32, 0), arr(32, 256), arr(32, -1), '[' + Array(31).fill(1).join(',') + ',1.5]', '[' + Array(31).fill(1).join(',') + ',1.0]', '[' + Array(31).fill(1).join(',') + ',1e1]', '[' + Array(31).fill(1).join(',') + ',-0]', 'null', '"AAAA"']) {
    bad(ShardContributeRequest, `{"shard":${sh}}`);
  }
  bad(RestoreRequest, `{"id":3e0,"shard":${arr(32, 255)}}`);
  const r = body(RestoreRequest, `{"id":3,"shard":${arr(32, 255)}}`);
  assert.equal(r.id, 3);
  assert.ok(r.shard.every((b) => b === 255));
  assert.throws(() => validateRestoreId(0), is400);
  assert.throws(() => validateRestoreId(1001), is400);
  validateRestoreId(1000);
  assert.throws(() => validateRestoreId(6, 5), is400);
});

test('[]byte fields: strict standard base64; nonce length checked', () => {
  const d = body(CipherDecryptRequest, '{"version":1,"nonce":"AAAAAAAAAAAAAAAA","ciphertext":"aGVsbG8="}');
  assert.equal(d.nonce.length, 12);
  assert.equal(d.ciphertext.toString(), 'hello');
  for (const c of ['"aGVsbG8"', '"aGVs bG8="', '"aGVsbG8=="', '"aGV-bG8="', '"aGV_bG8="', '1']) bad(CipherDecryptRequest, `{"ciphertext":${c}}`);
  bad(BootstrapVerifyRequest, '{"nonce":"AAAA","ciphertext":""}');
  assert.equal(body(BootstrapVerifyRequest, '{"nonce":"AAAAAAAAAAAAAAAA","ciphertext":""}').ciphertext.length, 0);
});

test('Go byte fields: the cipher version is 0..255 written as an unsigned integer (no sign, fraction or exponent)', () => {
  assert.equal(body(CipherDecryptRequest, '{"version":0}').version, 0);
  assert.equal(body(CipherDecryptRequest, '{"version":255}').version, 255);
  for (const v of ['-0', '-1', '256', '1.0', '1e0', '"1"']) bad(CipherDecryptRequest, `{"version":${v}}`);
  // A Go int field takes -0 as 0 (ParseInt accepts the sign).
  assert.equal(body(SecretGetRequest, '{"path":"a","version":-0}').version, 0);
});

test('schema: nested object/array helpers', () => {
  const sch = s.object({ a: s.optional(s.array(s.bool(), { maxItems: 2 }), []), b: s.nullable(s.string(), null) });
  assert.deepEqual({ ...body(sch, '{"b":null}') }, { a: [], b: null });
  bad(sch, '{"a":[true,false,true],"b":"x"}');
  bad(sch, '{"a":[1],"b":"x"}');
});

// ---- Go JSON

test('goJson: Go escaping, HTML-safe, map order, []byte base64, [32]byte arrays, times', () => {
  assert.equal(goJsonString('<a href="x">&\u2028\u2029\b\f\n\r\t\u0001\u007f</a>'), '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u2028\\u2029\\b\\f\\n\\r\\t\\u0001\u007f\\u003c/a\\u003e"');
  assert.equal(goJsonString('\ud800x'), '"\\ufffdx"');
  assert.equal(goJsonString('😀é'), '"😀é"');
  assert.equal(goJsonString(new Map([['2', 1], ['10', 2], ['1', 3]])), '{"1":3,"10":2,"2":1}');
  assert.equal(goJsonString({ b: 1, a: undefined, c: null }), '{"b":1,"c":null}');
  for (const n of [0, 1, 2, 3, 4, 5, 31, 32, 33, 100]) {
    const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37) & 255));
    assert.equal(goJsonString(b), JSON.stringify(b.toString('base64')));
  }
  const k = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 97) & 255));
  assert.equal(goJsonString(new Bytes32(k)), JSON.stringify([...k]));
  assert.equal(goJsonString(GoTime.ZERO), '"0001-01-01T00:00:00Z"');
  assert.equal(goJsonString(new GoTime(1_753_462_800_123_456_789n)), '"2025-07-25T17:00:00.123456789Z"');
  assert.equal(goJsonString(new GoTime(1_753_462_800_120_000_000n)), '"2025-07-25T17:00:00.12Z"');
  assert.equal(goJsonString(new GoTime(1_753_462_800_000_000_000n)), '"2025-07-25T17:00:00Z"');
  assert.equal(goJsonString(new Date(Date.UTC(2026, 6, 25, 10, 0, 0, 5))), '"2026-07-25T10:00:00.005Z"');
  assert.throws(() => goJsonString(Number.NaN));
  assert.equal(goJsonString(-0), '0');
});

test('goJson: output is valid JSON equal to JSON.stringify for plain values (property)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 5, stringUnit: 'grapheme' }), (v) => {
      const ours = goJsonString(v as never);
      assert.deepEqual(JSON.parse(ours), JSON.parse(JSON.stringify(v)));
      assert.ok(!/[<>&]/.test(ours));
    }),
    { numRuns: 300 },
  );
});

test('SPIKE\'s zero-valued error shapes and policy read field names', () => {
  assert.equal(goJsonString(ERROR_SHAPES.secretGet('api_not_found')), '{"data":null,"err":"api_not_found"}');
  assert.equal(
    goJsonString(ERROR_SHAPES.secretMetadata('x')),
    '{"metadata":{"currentVersion":0,"oldestVersion":0,"createdTime":"0001-01-01T00:00:00Z","updatedTime":"0001-01-01T00:00:00Z","maxVersions":0},"err":"x"}',
  );
  assert.equal(
    goJsonString(ERROR_SHAPES.policyGet('x')),
    '{"id":"","name":"","spiffiedPattern":"","pathPattern":"","permissions":null,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z","err":"x"}',
  );
  assert.equal(goJsonString(ERROR_SHAPES.encrypt('x')), '{"version":0,"nonce":null,"ciphertext":null,"err":"x"}');
  assert.equal(goJsonString(ERROR_SHAPES.restore('x')), '{"collected":0,"remaining":0,"restored":false,"err":"x"}');
  assert.equal(goJsonString(ERROR_SHAPES.keeperShard('x')), '{"shard":null,"Err":"x"}');
  const t = new GoTime(1_753_462_800_000_000_000n);
  assert.equal(
    goJsonString(policyGetResponse({ name: 'db-read', spiffeIdPattern: '^spiffe://example\\.org/app/db$', pathPattern: '^tenants/demo/db/.*$', permissions: ['read'], createdAt: t, updatedAt: t })),
    '{"id":"","name":"db-read","spiffiedPattern":"^spiffe://example\\\\.org/app/db$","pathPattern":"^tenants/demo/db/.*$","permissions":["read"],"createdAt":"2025-07-25T17:00:00Z","updatedAt":"2025-07-25T17:00:00Z"}',
  );
  const shards = intKeyedMap([[1, new Bytes32(Buffer.alloc(32, 1))], [2, new Bytes32(Buffer.alloc(32, 2))]]);
  assert.match(goJsonString({ shards }), /^\{"shards":\{"1":\[1(,1){31}\],"2":\[2(,2){31}\]\}\}$/);
});

test('storeFailureFromMessage: store and audit-log sentences are named, exactly; a closed audit log is not', async () => {
  const { AUDIT_FAILURE_MESSAGE, STORE_FAILURE_MESSAGE, storeFailureFromMessage } = await import('./index.js');
  assert.equal(storeFailureFromMessage(STORE_FAILURE_MESSAGE.disk_full), 'disk_full');
  assert.equal(storeFailureFromMessage(AUDIT_FAILURE_MESSAGE.disk_full), 'audit_disk_full');
  assert.equal(storeFailureFromMessage(AUDIT_FAILURE_MESSAGE.read_only), 'audit_read_only');
  assert.equal(storeFailureFromMessage(AUDIT_FAILURE_MESSAGE.io_error), 'audit_io_error');
  assert.equal(storeFailureFromMessage(AUDIT_FAILURE_MESSAGE.closed), undefined);
  assert.equal(storeFailureFromMessage(`${AUDIT_FAILURE_MESSAGE.disk_full} `), undefined);
  assert.equal(storeFailureFromMessage(undefined), undefined);
});
