/**
 * ENV-03: clock skew. With Nexus's clock 1 h ahead, a client's fresh SVID (1 h lifetime)
 * looks expired to it; 1 h behind, not yet valid. Expected: the TLS handshake is refused, and
 * Nexus logs a line hinting at clock skew (before: refused without a word).
 *
 * The catalogue runs Nexus under libfaketime (Debian package `faketime`), which the project's
 * machines do not install; the same verdicts are produced here from the other side: client
 * SVIDs, minted by the stack's agent CA, whose validity is shifted by an hour, as Nexus would
 * judge fresh ones with its clock an hour off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Stack } from '../helpers/stack.js';
import { issueLeaf, loadCa, type TestCa } from '../helpers/pki.js';
import { waitFor } from './secrets-helpers.js';

const TD = 'spike.ist';
const SUPERUSER = `spiffe://${TD}/spike/pilot/role/superuser`;
const HOUR = 3_600_000;
let stack: Stack;
let ca: TestCa;

before(async () => {
  stack = await Stack.start({ keepers: 3, threshold: 2 });
  const dir = path.join(stack.dir, 'agent');
  ca = await loadCa(TD, fs.readFileSync(path.join(dir, 'ca.key')), fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'));
});
after(async () => {
  await stack?.stop();
});

/** A handshake with a superuser SVID valid from `from` for 1 h; resolves with how it ended. */
async function handshake(from: number): Promise<string> {
  const leaf = await issueLeaf(ca, { uris: [SUPERUSER], notBefore: new Date(from), notAfter: new Date(from + HOUR) });
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1', port: Number(new URL(stack.nexusUrl).port), cert: leaf.pem,
      key: leaf.key.export({ format: 'pem', type: 'pkcs8' }) as string, ca: ca.pem, checkServerIdentity: () => undefined,
    });
    // TLS 1.3: the client's handshake ends before the server judged its certificate; the
    // refusal is the server closing the connection without ever answering.
    s.once('secureConnect', () => s.write('POST /v1/store/secrets?action=list HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}'));
    s.once('data', () => { resolve('answered'); s.destroy(); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? ''}`));
    s.once('close', () => resolve('closed'));
  });
}

test('ENV-03: an SVID expired or not yet valid by Nexus\'s clock (clock 1 h ahead / behind): refused, with a clock-skew hint in the log', { timeout: 60_000 }, async () => {
  const now = Date.now();
  assert.equal(await handshake(now - 60_000), 'answered', 'control: a fresh SVID is served');
  for (const [name, from, hint] of [
    ['Nexus 1 h ahead (client SVID expired)', now - HOUR - 60_000, /expired by this host's clock; check for clock skew/],
    ['Nexus 1 h behind (client SVID not yet valid)', now + HOUR - 60_000, /not yet valid by this host's clock; check for clock skew/],
  ] as const) {
    const outcome = await handshake(from);
    assert.notEqual(outcome, 'answered', `${name}: refused`);
    await waitFor(() => hint.test(stack.logs('nexus')), 10_000, `${name}: the clock-skew hint in Nexus's log`);
  }
});
