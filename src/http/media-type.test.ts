/**
 * Content-Type parsing (SEC-17): a declared non-UTF-8 charset is detected; malformed or absent
 * headers are not refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMediaType, unsupportedCharset } from './media-type.js';

test('SEC-17: a declared charset other than UTF-8 is detected; UTF-8 (any case, quoted), no charset, absent or malformed headers are not', () => {
  for (const h of ['application/json; charset=utf-16', 'application/json; charset="UTF-16LE"', 'application/json;charset=iso-8859-1',
    'text/plain; charset=us-ascii', 'application/json; charset=utf-8; charset=utf-16', 'application/problem+json; charset=utf-16']) {
    assert.equal(unsupportedCharset(h), true, h);
  }
  for (const h of [undefined, 'application/json', 'application/json; charset=utf-8', 'application/json; charset=UTF-8',
    'application/json; charset="utf-8"', 'application/json;charset=utf8', 'text/plain', 'garbage', 'application/json; charset',
    'application/octet-stream; charset=binary', 'image/png; charset=utf-16']) {
    assert.equal(unsupportedCharset(h), false, String(h));
  }
});

test('parseMediaType: essence lower-cased, parameter names lower-cased, quoted values unescaped', () => {
  assert.deepEqual(parseMediaType('Text/HTML; Charset="a\\"b"; q=1'), { essence: 'text/html', params: [['charset', 'a"b'], ['q', '1']] });
  assert.equal(parseMediaType(undefined), undefined);
  assert.equal(parseMediaType('nope'), null);
});
