/**
 * P6 / D12 at the HTTP level (FI-01 short form; sqlite and postgres backends): 16 concurrent SDK writers put secrets while
 * Nexus is `kill -9`ed at a random moment, 10 rounds. After each restart (Keepers stay up, so
 * Nexus recovers its key by itself) every acknowledged write reads back exactly; a write that
 * was not acknowledged is either absent or exactly what was sent (never torn).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack, e2eBackends } from '../helpers/stack.js';

const ROUNDS = 10;
const WRITERS = 16;

let stack: Stack;
let pilot: NexusClient;

// One suite, every backend (issue 8): sqlite, then postgres (a throw-away cluster per stack).
for (const backend of e2eBackends()) {
  describe(`backend: ${backend}`, () => {
    before(async () => {
      stack = await Stack.start({ backend });
      pilot = await stack.client('pilot');
    });
    after(async () => {
      await stack?.stop();
    });

    interface Outcome {
      acked: Map<string, string>;
      unacked: Map<string, string>;
    }

    async function writer(client: NexusClient, id: number, round: number, stop: { now: boolean }, out: Outcome): Promise<void> {
      for (let seq = 0; !stop.now && seq < 10_000; seq++) {
        const path = `durable/r${round}/w${id}/s${seq}`;
        const value = randomBytes(18).toString('base64url');
        try {
          await client.putSecret(path, { value });
          out.acked.set(path, value);
        } catch {
          out.unacked.set(path, value);
          return; // Nexus is gone: this writer's round is over
        }
      }
    }

    async function verify(client: NexusClient, entries: Array<[string, string]>, acked: boolean): Promise<string[]> {
      const bad: string[] = [];
      let i = 0;
      const worker = async (): Promise<void> => {
        while (i < entries.length) {
          const [path, value] = entries[i++] as [string, string];
          try {
            const got = await client.getSecret(path);
            if (got['value'] !== value || Object.keys(got).length !== 1) bad.push(`${path}: wrong value`);
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (acked || code !== 'api_not_found') bad.push(`${path}: ${code ?? 'error'}`);
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      return bad;
    }

    test(`P6 / FI-01: ${WRITERS} concurrent writers, Nexus kill -9 at random moments, ${ROUNDS} rounds → every acknowledged write reads back exactly`, async (t) => {
      const allAcked = new Map<string, string>();
      let totalUnacked = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const out: Outcome = { acked: new Map(), unacked: new Map() };
        const stop = { now: false };
        const writers = Array.from({ length: WRITERS }, (_, w) => writer(pilot, w, round, stop, out));
        // Kill at a random moment *after* the writers got going: wait (condition, generous
        // deadline) until a first write is acknowledged, then a random delay.
        const deadline = Date.now() + 60_000;
        while (out.acked.size === 0 && out.unacked.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setTimeout(r, randomInt(0, 320)));
        await stack.killNexus('SIGKILL');
        stop.now = true;
        await Promise.all(writers);
        await stack.startNexus();
        await stack.waitReady(90_000);
        const badAcked = await verify(pilot, [...out.acked], true);
        assert.deepEqual(badAcked, [], `round ${round}: acknowledged writes lost or changed`);
        const badUnacked = await verify(pilot, [...out.unacked], false);
        assert.deepEqual(badUnacked, [], `round ${round}: an unacknowledged write is torn`);
        for (const [k, v] of out.acked) allAcked.set(k, v);
        totalUnacked += out.unacked.size;
        assert.ok(out.acked.size > 0, `round ${round}: no write was acknowledged before the kill`);
      }
      // Every round's acknowledged writes survive all later crashes too.
      assert.deepEqual(await verify(pilot, [...allAcked], true), []);
      const listed = new Set(await pilot.listSecrets());
      for (const p of allAcked.keys()) assert.ok(listed.has(p), 'acknowledged path missing from list');
      t.diagnostic(`acknowledged ${allAcked.size} writes over ${ROUNDS} crashes; ${totalUnacked} in flight at the kills`);
    });
  });
}
