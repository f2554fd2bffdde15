/**
 * What a `NexusApiError` carries: the stable `code`, where the request went (`url`: scheme,
 * host, port; `route`: route and action — never the secret path, which travels in the body)
 * and, when no answer arrived, the underlying `cause`. Runs the real transport over plain
 * HTTP (`allowHttp`) to a local scripted server; TLS behaviour is in client.test.ts.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { PATHS } from '../protocol/index.js';
import { NexusClient } from './client.js';
import { NexusApiError } from './errors.js';

const SECRET_PATH = 'apps/very-private/db';
let server: http.Server;
let base = '';
let answer: (res: http.ServerResponse) => void = (res) => res.end('{}');
const agent = new Agent();

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(async () => {
  await agent.close();
  await new Promise((r) => server.close(r));
});

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function client(urls: string[]): NexusClient {
  return NexusClient.create({ urls, dispatcher: agent, allowHttp: true, ownsDispatcher: false, timeoutMs: 10_000, retryUnavailableMs: 0 }); // a refusal is reported at once
}

async function failure(p: Promise<unknown>): Promise<NexusApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof NexusApiError, `expected NexusApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('the call succeeded');
}

test('errors: an HTTP error answer carries code, status, the instance URL and the route + action, never the secret path', async () => {
  answer = (res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"err":"api_not_found"}');
  };
  const e = await failure(client([base]).getSecret(SECRET_PATH));
  assert.equal(e.code, 'api_not_found');
  assert.equal(e.status, 404);
  assert.equal(e.url, base);
  assert.equal(e.route, `${PATHS.secrets}?action=get`);
  assert.ok(!String(e.route).includes('very-private') && !e.message.includes('very-private'));
  assert.equal(e.cause, undefined);
});

test('errors: a connection failure carries the URL tried and the network error as cause', async () => {
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const e = await failure(client([dead]).listSecrets());
  assert.equal(e.code, 'net_peer_connection');
  assert.equal(e.status, undefined);
  assert.equal(e.url, dead);
  assert.equal(e.route, `${PATHS.secrets}?action=list`);
  assert.ok(e.cause instanceof Error, 'cause is the underlying error');
  assert.equal(e.failure?.class, 'connection_refused');
});

test('errors: after fail-over the URL is the instance that answered', async () => {
  answer = (res) => {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end('{"err":"unauthorized"}');
  };
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const e = await failure(client([dead, base]).getSecretMetadata(SECRET_PATH));
  assert.equal(e.code, 'access_unauthorized');
  assert.equal(e.url, base);
  assert.equal(e.route, `${PATHS.secretsMetadata}?action=get`);
});

test('errors: an unparsable 200 body is data_unmarshal_failure without a cause that could quote the body', async () => {
  answer = (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('not json: s3cret-value');
  };
  const e = await failure(client([base]).getSecret(SECRET_PATH));
  assert.equal(e.code, 'data_unmarshal_failure');
  assert.equal(e.cause, undefined);
  assert.ok(!e.message.includes('s3cret'));
});
