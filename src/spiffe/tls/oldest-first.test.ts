/**
 * OldestFirst (admission.ts's per-source handshake lists): the same members, size and oldest
 * member as a plain insertion-ordered list under any sequence of adds, deletes and reads
 * (property), and the oldest member stays cheap to read while its predecessors keep being
 * deleted (the flood pattern a V8 Set iterates slowly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OldestFirst } from './oldest-first.js';

type Op = { kind: 'add' | 'delete' | 'oldest'; x: number };

test('property: OldestFirst matches an insertion-ordered list under any sequence of operations', () => {
  const op = fc.record({ kind: fc.constantFrom<Op['kind']>('add', 'add', 'delete', 'oldest'), x: fc.integer({ min: 0, max: 40 }) });
  fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
    const q = new OldestFirst<number>();
    const ref: number[] = [];
    for (const o of ops) {
      if (o.kind === 'add') {
        q.add(o.x);
        if (!ref.includes(o.x)) ref.push(o.x);
      } else if (o.kind === 'delete') {
        const i = ref.indexOf(o.x);
        assert.equal(q.delete(o.x), i !== -1);
        if (i !== -1) ref.splice(i, 1);
      } else {
        assert.equal(q.oldest(), ref[0]);
      }
      assert.equal(q.size, ref.length);
    }
    assert.equal(q.oldest(), ref[0]);
  }), {
    numRuns: 300,
    // Found by this property in a CI run: a member deleted and added again was taken for the
    // oldest by its first, stale entry.
    examples: [[[{ kind: 'add', x: 35 }, { kind: 'delete', x: 35 }, { kind: 'add', x: 0 }, { kind: 'add', x: 35 }]]],
  });
});

test('a flood evicting its own oldest at every add (200,000 times): the oldest stays right', () => {
  const q = new OldestFirst<object>();
  const live: object[] = [];
  for (let i = 0; i < 512; i++) {
    const s = {};
    q.add(s);
    live.push(s);
  }
  for (let i = 0; i < 200_000; i++) {
    const oldest = q.oldest();
    assert.equal(oldest, live[0]);
    q.delete(oldest!);
    live.shift();
    const s = {};
    q.add(s);
    live.push(s);
  }
  assert.equal(q.size, 512);
  assert.equal(q.oldest(), live[0]);
});

test('members added and deleted behind a long-lived oldest (the case that compacts the order): the oldest stays right', () => {
  const q = new OldestFirst<number>();
  q.add(-1); // stays for the whole test
  for (let i = 0; i < 10_000; i++) {
    q.add(i);
    q.delete(i);
  }
  assert.equal(q.size, 1);
  assert.equal(q.oldest(), -1);
  q.delete(-1);
  assert.equal(q.oldest(), undefined);
  assert.equal(q.size, 0);
});
