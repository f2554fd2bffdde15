/**
 * Three spike-nexus processes on ONE PostgreSQL database, behind no load balancer but the
 * SDK's own URL list (issue 8 acceptance, HTTP level; real agent, Keepers, Bootstrap):
 * - bootstrap runs once; every instance recovers the root key from the Keepers by itself;
 *   each Keeper holds exactly one share and every re-push from every instance is the
 *   identical share (the Keepers record one `stored` — Bootstrap's — and only `unchanged`
 *   afterwards), so the instances never fight over the Keepers;
 * - SEC-13 across instances: 3 × 16 concurrent writers, each bound to one instance, on the
 *   same paths → all versions distinct, 1..48 with no gap, each readable (same bytes) from
 *   every instance;
 * - POL-17 across instances: a policy deleted via instance A denies on instance B on the
 *   very next request (also with 100 requests in flight on B), and a grant made via A
 *   allows on B at once;
 * - `kill -9` of one instance under load → an SDK client with all three URLs keeps every
 *   read succeeding (fail-over), writes keep being acknowledged, and no acknowledged write is
 *   lost (checked on the survivors and on the restarted instance).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NexusClient } from '../../src/sdk/index.js';
import { KeeperClient } from '../../src/keeper/client.js';
import { WorkloadX509Source, authorizeIf } from '../../src/spiffe/index.js';
import { Stack } from '../helpers/stack.js';

const APP = 'spiffe://spike.ist/workload/ha-app';
const APP_RE = '^spiffe://spike\\.ist/workload/ha-app$';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; throws after `ms` (generous: the machine may be loaded). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `share contributed` lines of one Keeper with the given outcome. */
function contributions(stack: Stack, keeper: number, outcome: 'stored' | 'unchanged'): number {
  return stack.logs(`keeper-${keeper}`).split('\n').filter((l) => l.includes('share contributed') && l.includes(`"outcome":"${outcome}"`)).length;
}
const codeOf = (e: unknown): string => (e as { code?: string }).code ?? 'error';

describe('three Nexus instances on one PostgreSQL database', () => {
  let stack: Stack;
  /** pilot clients bound to one instance each (index 0 = instance 1). */
  const pilots: NexusClient[] = [];
  /** workload clients bound to one instance each. */
  const apps: NexusClient[] = [];

  before(async () => {
    stack = await Stack.start({
      backend: 'postgres',
      nexusCount: 3,
      identities: { 'ha-app': APP },
      nexusEnv: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '100', SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL: '1s' },
    });
    for (const url of stack.nexusUrls) {
      pilots.push(await stack.client('pilot', { urls: [url] }));
      apps.push(await stack.client('ha-app', { urls: [url] }));
    }
  });
  after(async () => {
    await stack?.stop();
  });

  test('bootstrap once; every instance recovers from the Keepers; each Keeper holds one share, pushed identically by all', async () => {
    // Bootstrap ran once (Stack.start) against instance 1 only; all three became ready.
    for (let i = 1; i <= 3; i++) {
      assert.match(stack.logs(stack.nexusName(i)), /root key recovered from keepers/, `${stack.nexusName(i)} did not recover from the Keepers`);
    }
    const pg = stack.postgres!;
    assert.equal((await pg.psql("SELECT key FROM spike_system WHERE key IN ('kcv','sharing') ORDER BY key", 'spike')).trim(), 'kcv\nsharing');
    // Let every instance re-push a few rounds (interval 1 s): at least 3 instances × 3 rounds of
    // identical re-pushes per Keeper (a count reached, not a wall-clock window).
    await until(() => [1, 2, 3].every((k) => contributions(stack, k, 'unchanged') >= 9), 120_000, 'three rounds of re-pushes');
    const source = await WorkloadX509Source.open({ endpoint: stack.socket('nexus'), timeoutMs: 15_000 });
    const kc = new KeeperClient({ source, authorizeKeeper: authorizeIf((id) => id.toString().startsWith('spiffe://spike.ist/spike/keeper/')), shareRecipients: [] });
    const snapshot = async (): Promise<Array<{ id: number | undefined; epoch: number | undefined; digest: string; value: Buffer }>> => {
      const out = [];
      for (const url of stack.keeperUrls) {
        const s = await kc.fetchShare(url);
        out.push({ id: s.id, epoch: s.epoch, digest: s.commitments ? Buffer.from(s.commitments.digest()).toString('hex') : '', value: Buffer.from(s.value) });
        s.value.fill(0);
      }
      return out;
    };
    try {
      const first = await snapshot();
      // Another round from every instance (3 more re-pushes per Keeper) before the second look.
      const seen = [1, 2, 3].map((k) => contributions(stack, k, 'unchanged'));
      await until(() => [1, 2, 3].every((k, i) => contributions(stack, k, 'unchanged') >= seen[i]! + 3), 120_000, 'another round of re-pushes');
      const second = await snapshot();
      try {
        assert.deepEqual(first.map((s) => s.id), [1, 2, 3], 'each Keeper holds the share with its own id');
        assert.equal(new Set(first.map((s) => s.digest)).size, 1, 'all Keepers hold shares of one sharing');
        assert.equal(new Set(first.map((s) => s.epoch)).size, 1);
        assert.equal(new Set(first.map((s) => s.value.toString('hex'))).size, 3, 'shares are distinct per Keeper');
        for (let k = 0; k < 3; k++) {
          assert.ok(first[k]!.value.equals(second[k]!.value), `Keeper ${k + 1}'s share changed between pushes`);
        }
      } finally {
        for (const s of [...first, ...second]) s.value.fill(0);
      }
    } finally {
      await kc.close();
      source.close();
    }
    // Every contribution after Bootstrap's was the identical share: the share held once per
    // Keeper (Bootstrap's commit of its staged share, or a Nexus push that came first), then
    // `unchanged` only — at least 3 instances × 3 rounds of them.
    for (let k = 1; k <= 3; k++) {
      const lines = stack.logs(`keeper-${k}`).split('\n').filter((l) => l.includes('share contributed'));
      const stored = lines.filter((l) => l.includes('"outcome":"stored"') || l.includes('"outcome":"committed"')).length;
      const unchanged = lines.filter((l) => l.includes('"outcome":"unchanged"')).length;
      assert.equal(stored, 1, `keeper-${k}: ${stored} × stored or committed (a conflicting push replaced the share)`);
      assert.ok(unchanged >= 9, `keeper-${k}: only ${unchanged} identical re-pushes`);
    }
    for (let i = 1; i <= 3; i++) assert.doesNotMatch(stack.logs(stack.nexusName(i)), /share push failed|rebuilt key rejected/);
  });

  test('SEC-13 across instances: 3 × 16 concurrent writers (one instance each) on the same paths → versions 1..48, distinct, readable everywhere', async () => {
    const paths = ['ha/race/a', 'ha/race/b', 'ha/race/c'];
    const writers: Array<{ instance: number; writer: number }> = [];
    for (let instance = 0; instance < 3; instance++) for (let w = 0; w < 16; w++) writers.push({ instance, writer: w });
    const tag = (x: { instance: number; writer: number }): string => `i${x.instance}w${x.writer}`;
    // Each writer writes every path once, in its own order, all at the same time.
    const results = await Promise.allSettled(writers.flatMap((x) => paths.map(async (_, k) => {
      const path = paths[(k + x.writer) % paths.length]!;
      await pilots[x.instance]!.putSecret(path, { who: tag(x), path, pad: 'x'.repeat(x.writer) });
    })));
    assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => codeOf((r as PromiseRejectedResult).reason)), []);
    for (const path of paths) {
      for (let instance = 0; instance < 3; instance++) {
        const meta = await pilots[instance]!.getSecretMetadata(path);
        assert.equal(meta.metadata.currentVersion, 48, `${path} via instance ${instance + 1}`);
        assert.deepEqual(Object.keys(meta.versions).map(Number).sort((a, b) => a - b), Array.from({ length: 48 }, (_, i) => i + 1));
      }
      const owner = new Map<string, number>();
      for (let version = 1; version <= 48; version++) {
        const seen = await Promise.all(pilots.map((c) => c.getSecret(path, { version })));
        for (const s of seen.slice(1)) assert.deepEqual({ ...s }, { ...seen[0]! }, `${path} v${version} differs between instances`);
        const who = seen[0]!['who']!;
        assert.equal(seen[0]!['path'], path);
        assert.ok(!owner.has(who), `${who} holds two versions of ${path} (${owner.get(who)} and ${version})`);
        owner.set(who, version);
      }
      assert.deepEqual([...owner.keys()].sort(), writers.map(tag).sort(), `${path}: every acknowledged write has its own version`);
    }
  });

  test('POL-17 across instances: a policy deleted via A denies on B at the very next request; a grant via A allows on B at once', async () => {
    const a = pilots[0]!;
    const appB = apps[1]!;
    const appC = apps[2]!;
    await a.putSecret('ha/pol/one', { v: '1' });
    const canRead = async (c: NexusClient): Promise<boolean> => {
      try {
        await c.getSecret('ha/pol/one');
        return true;
      } catch (e) {
        if (codeOf(e) === 'access_unauthorized') return false;
        throw e;
      }
    };
    assert.equal(await canRead(appB), false);
    for (let round = 0; round < 5; round++) {
      await a.putPolicy({ name: 'ha-read', spiffeIdPattern: APP_RE, pathPattern: '^ha/pol/.*$', permissions: ['read'] });
      assert.equal(await canRead(appB), true, `round ${round}: grant via A not seen by B`);
      assert.equal(await canRead(appC), true, `round ${round}: grant via A not seen by C`);
      await a.deletePolicy('ha-read');
      assert.equal(await canRead(appB), false, `round ${round}: delete via A not enforced by B on the next request`);
      assert.equal(await canRead(appC), false, `round ${round}: delete via A not enforced by C on the next request`);
    }
    // The same with B busy: 100 requests in flight on B while A deletes; every request
    // started on B after the delete's 200 is denied.
    await a.putPolicy({ name: 'ha-read', spiffeIdPattern: APP_RE, pathPattern: '^ha/pol/.*$', permissions: ['read'] });
    assert.equal(await canRead(appB), true);
    const appB2 = await stack.client('ha-app', { urls: [stack.nexusUrls[1]!] });
    const inflight = Array.from({ length: 100 }, () => canRead(appB));
    await a.deletePolicy('ha-read');
    const started = await Promise.all(Array.from({ length: 50 }, () => canRead(appB2)));
    assert.deepEqual(started.filter(Boolean), [], 'a request on B started after the delete via A was allowed');
    await Promise.all(inflight);
    // and the policy list agrees everywhere
    for (const c of pilots) assert.deepEqual((await c.listPolicies()).map((p) => p.name), []);
  });

  test('kill -9 of one instance under load: SDK fail-over keeps every read succeeding; no acknowledged write is lost', async (t) => {
    const reader = await stack.client('pilot', { urls: stack.nexusUrls });
    const writer = await stack.client('pilot', { urls: stack.nexusUrls });
    const seeded = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const v = randomBytes(12).toString('base64url');
      await pilots[0]!.putSecret(`ha/kill/seed/${i}`, { v });
      seeded.set(`ha/kill/seed/${i}`, v);
    }
    const seedPaths = [...seeded.keys()];
    const stop = { now: false };
    const killedAt = { t: Infinity };
    const reads = { ok: 0, okAfterKill: 0, failed: [] as string[] };
    const acked = new Map<string, string>();
    const unacked = new Map<string, string>();
    let ackedAfterKill = 0;
    const readLoop = async (r: number): Promise<void> => {
      for (let k = r; !stop.now; k++) {
        const path = seedPaths[k % seedPaths.length]!;
        try {
          const got = await reader.getSecret(path);
          if (got['v'] !== seeded.get(path)) reads.failed.push(`${path}: wrong value`);
          reads.ok++;
          if (Date.now() > killedAt.t) reads.okAfterKill++;
        } catch (e) {
          reads.failed.push(`${path}: ${codeOf(e)}`);
        }
      }
    };
    const writeLoop = async (w: number): Promise<void> => {
      for (let seq = 0; !stop.now; seq++) {
        const path = `ha/kill/w${w}/s${seq}`;
        const v = randomBytes(12).toString('base64url');
        try {
          await writer.putSecret(path, { v });
          acked.set(path, v);
          if (Date.now() > killedAt.t) ackedAfterKill++;
        } catch {
          // in flight when the instance died: may or may not have been stored
          unacked.set(path, v);
        }
      }
    };
    const loops = [...Array.from({ length: 8 }, (_, r) => readLoop(r)), ...Array.from({ length: 8 }, (_, w) => writeLoop(w))];
    try {
      // The load runs before the kill, and enough reads and writes succeed after it: conditions
      // with generous deadlines, not wall-clock windows.
      await until(() => reads.ok > 20 && acked.size > 20, 90_000, 'the load to run before the kill');
      // Both clients prefer instance 1 (first URL, answering so far): kill exactly that one.
      killedAt.t = Date.now();
      await stack.killNexus('SIGKILL', 1);
      await until(() => (reads.okAfterKill > 20 && ackedAfterKill > 20) || reads.failed.length > 0, 90_000, 'reads and writes after the kill').catch(() => undefined);
    } finally {
      stop.now = true;
      await Promise.all(loops);
    }
    t.diagnostic(`reads ok ${reads.ok} (${reads.okAfterKill} after the kill), writes acked ${acked.size} (${ackedAfterKill} after the kill), unacked ${unacked.size}`);
    assert.deepEqual(reads.failed, [], 'a read failed although two instances were up');
    assert.ok(reads.okAfterKill > 20, `only ${reads.okAfterKill} reads after the kill`);
    assert.ok(ackedAfterKill > 20, `only ${ackedAfterKill} writes acknowledged after the kill`);
    assert.ok(unacked.size <= 16, `${unacked.size} writes failed; only those in flight around the kill may`);

    const verify = async (c: NexusClient, entries: Iterable<[string, string]>, mustExist: boolean): Promise<string[]> => {
      const bad: string[] = [];
      const list = [...entries];
      let i = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (i < list.length) {
          const [path, v] = list[i++]!;
          try {
            const got = await c.getSecret(path);
            if (got['v'] !== v || Object.keys(got).length !== 1) bad.push(`${path}: wrong value`);
          } catch (e) {
            if (mustExist || codeOf(e) !== 'api_not_found') bad.push(`${path}: ${codeOf(e)}`);
          }
        }
      }));
      return bad;
    };
    for (const i of [1, 2]) {
      assert.deepEqual(await verify(pilots[i]!, acked, true), [], `acknowledged writes lost (instance ${i + 1})`);
      assert.deepEqual(await verify(pilots[i]!, unacked, false), [], `an unacknowledged write is torn (instance ${i + 1})`);
    }
    // The killed instance comes back on its own key from the Keepers and sees it all too.
    await stack.startNexus(1);
    await stack.waitReady(90_000, 1);
    assert.deepEqual(await verify(pilots[0]!, acked, true), [], 'acknowledged writes missing on the restarted instance');
  });
});
