/**
 * The operations listener's connection slots (slots.ts) with stand-in sockets: the per-address
 * cap replaces that address's oldest idle connection; a full listener replaces the oldest idle
 * connection of the address holding the most; a connection answering a request is never cut;
 * when every connection answers a request the newcomer is refused. The listener test attacks
 * it over real sockets (attack-ops-idle-lockout).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { OpsSlots } from './slots.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string, readonly name: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    queueMicrotask(() => this.emit('close'));
  }
}
const sock = (addr: string, name: string): FakeSocket & Socket => new FakeSocket(addr, name) as FakeSocket & Socket;

test('ops slots: one address at its cap replaces its own oldest idle connection, never another address\'s', () => {
  const slots = new OpsSlots({ total: 10, perAddress: 3 });
  const probe = sock('10.0.0.9', 'probe');
  assert.ok(slots.admit(probe));
  const a = [1, 2, 3, 4, 5].map((i) => sock('10.0.0.1', `a${i}`));
  for (const s of a) assert.ok(slots.admit(s));
  assert.deepEqual(a.map((s) => s.destroyed), [true, true, false, false, false]);
  assert.equal(probe.destroyed, false);
  assert.equal(slots.size, 4);
});

test('ops slots: a full listener replaces the oldest idle connection of the address holding the most', () => {
  const slots = new OpsSlots({ total: 6, perAddress: 4 });
  const b = [1, 2].map((i) => sock('10.0.0.2', `b${i}`));
  const a = [1, 2, 3, 4].map((i) => sock('10.0.0.1', `a${i}`));
  for (const s of [...b, ...a]) assert.ok(slots.admit(s));
  const probe = sock('10.0.0.9', 'probe');
  assert.ok(slots.admit(probe));
  assert.equal(a[0]!.destroyed, true, 'the oldest of the address holding the most');
  assert.ok(b.every((s) => !s.destroyed), 'the older, smaller holder keeps its connections');
  // The attacker reconnects from its address: it can only replace its own.
  for (let i = 0; i < 20; i++) assert.ok(slots.admit(sock('10.0.0.1', `again${i}`)));
  assert.equal(probe.destroyed, false, 'a probe from an address holding one is never replaced while another holds more');
  assert.ok(b.every((s) => !s.destroyed));
});

test('ops slots: a connection answering a request is never cut; with every one answering, the newcomer is refused', () => {
  const slots = new OpsSlots({ total: 2, perAddress: 2 });
  const x = sock('10.0.0.1', 'x');
  const y = sock('10.0.0.1', 'y');
  assert.ok(slots.admit(x));
  assert.ok(slots.admit(y));
  const doneX = slots.requestStarted(x);
  const doneY = slots.requestStarted(y);
  assert.equal(slots.admit(sock('10.0.0.1', 'z')), false);
  assert.equal(slots.admit(sock('10.0.0.2', 'w')), false);
  assert.ok(!x.destroyed && !y.destroyed);
  doneY();
  doneY(); // a second call (finish and close) counts once
  assert.ok(slots.admit(sock('10.0.0.2', 'v')));
  assert.equal(y.destroyed, true);
  assert.equal(x.destroyed, false);
  doneX();
});

test('ops slots: a closed connection frees its slot', async () => {
  const slots = new OpsSlots({ total: 1, perAddress: 1 });
  const x = sock('10.0.0.1', 'x');
  assert.ok(slots.admit(x));
  x.emit('close');
  assert.equal(slots.size, 0);
  const y = sock('10.0.0.1', 'y');
  assert.ok(slots.admit(y));
  assert.equal(y.destroyed, false);
});
