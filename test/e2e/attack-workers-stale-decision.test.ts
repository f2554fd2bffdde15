/**
 * attack-workers-stale-decision (attacker review): with several worker processes on one SQLite
 * file, a workload that expects to be revoked opens requests early — headers and one body
 * byte — and sends the rest of each body (the path it wants) only after the policy delete was
 * answered. The policy generation used to be checked once, as the headers arrived; the full
 * check on the body's path then ran on whatever the worker's engine held, and a worker that
 * had not served the delete allowed half of them. Now a JSON route's full check reads the
 * generation again once the body is in, so every one is denied.
 */
import { PassThrough } from 'node:stream';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Dispatcher } from 'undici';
import { Stack } from '../helpers/stack.js';
import { rawClient, waitFor } from './secrets-helpers.js';
import { PATHS } from '../../src/protocol/index.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';

const W = 'spiffe://spike.ist/app/w';
const S = PATHS.secrets;
const P = PATHS.policy;
const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

test('attack-workers-stale-decision: requests opened before a policy delete and completed after its answer are all denied, whichever worker holds them', async () => {
  const stack = await Stack.start({ identities: { w: W }, nexusEnv: { SPIKE_NEXUS_WORKERS: '2', SPIKE_SYSTEM_LOG_LEVEL: 'INFO' } });
  stacks.push(stack);
  await waitFor(() => [1, 2].every((n) => new RegExp(`"worker":${n}[^\\n]*root key recovered from keepers`).test(stack.logs('nexus'))), 60_000, 'both workers');
  const pilot = await rawClient(stack, 'pilot');
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('w'), timeoutMs: 15_000 });
  const dispatchers: Dispatcher[] = [];
  try {
    assert.equal((await pilot.post(S, { path: 'app/x', values: { v: 'x' } })).status, 200);
    assert.equal((await pilot.post(P, { name: 'grant-w', spiffeidPattern: '^spiffe://spike\\.ist/app/w$', pathPattern: '^app/.*$', permissions: ['read'] })).status, 200);
    const nexusId = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
    const body = JSON.stringify({ path: 'app/x' });
    const held = Array.from({ length: 8 }, () => {
      const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.equals(nexusId)) });
      dispatchers.push(dispatcher);
      const stream = new PassThrough();
      const answer = request(`${stack.nexusUrl}${S}?action=get`, {
        method: 'POST', body: stream, dispatcher,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));
      stream.write(body.slice(0, 1)); // the headers go out with the first body byte
      return { stream, answer };
    });
    await new Promise((r) => setTimeout(r, 1000)); // the requests are in, each waiting for its body
    assert.equal((await pilot.post(`${P}?action=delete`, { id: 'grant-w' })).status, 200);
    for (const h of held) h.stream.end(body.slice(1));
    const answers = await Promise.all(held.map((h) => h.answer));
    for (const a of answers) assert.equal(a.status, 401, `denied after the delete's answer: ${a.text}`);
  } finally {
    for (const d of dispatchers) await d.close().catch(() => undefined);
    source.close();
    await pilot.close();
  }
});
