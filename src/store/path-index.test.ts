/**
 * The path index against a naive model (filter + sort of a Set): property tests with
 * fast-check over random paths, prefixes, cursors, limits and filters, plus the paging
 * promise under concurrent inserts (every path present before the first page is returned
 * exactly once, nothing is ever returned twice).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PathIndex } from './path-index.js';

/** Small alphabet so prefixes, cursors and paths collide often. */
const pathArb = fc.string({ unit: fc.constantFrom('a', 'b', '/', 'Z', '0', '.'), minLength: 1, maxLength: 6 });
const prefixArb = fc.string({ unit: fc.constantFrom('a', 'b', '/', 'Z'), maxLength: 3 });

function model(all: Iterable<string>, prefix: string, after: string | undefined, accept?: (p: string) => boolean): string[] {
  return [...new Set(all)]
    .filter((p) => p.startsWith(prefix) && (after === undefined || p > after) && (accept === undefined || accept(p)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

test('index: add / addMany / replace keep a sorted set equal to the model', () => {
  fc.assert(fc.property(
    fc.array(fc.oneof(pathArb.map((p) => [p]), fc.array(pathArb, { maxLength: 200 }))),
    (batches) => {
      const idx = new PathIndex();
      const seen: string[] = [];
      for (const b of batches) {
        if (b.length === 1) idx.add(b[0] as string);
        else idx.addMany(b);
        seen.push(...b);
      }
      assert.deepEqual(idx.range('', undefined, Number.MAX_SAFE_INTEGER), model(seen, '', undefined));
      assert.equal(idx.size, new Set(seen).size);
      for (const p of seen) assert.ok(idx.has(p));
      idx.replace(seen.slice(0, 3));
      assert.deepEqual(idx.range('', undefined, 1e9), model(seen.slice(0, 3), '', undefined));
    },
  ), { numRuns: 300 });
});

test('index: range(prefix, after, max) equals the model, cut at max', () => {
  fc.assert(fc.property(
    fc.array(pathArb, { maxLength: 80 }), prefixArb, fc.option(pathArb, { nil: undefined }), fc.integer({ min: 0, max: 20 }),
    (paths, prefix, after, max) => {
      const idx = new PathIndex();
      idx.addMany(paths);
      assert.deepEqual(idx.range(prefix, after, max), model(paths, prefix, after).slice(0, max));
    },
  ), { numRuns: 1000 });
});

test('index: scan pages with a filter equal the model; `more` is exact; pages chain through `after`', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(pathArb, { maxLength: 120 }), prefixArb, fc.integer({ min: 1, max: 7 }), fc.constantFrom('all', 'no-b', 'none'),
    async (paths, prefix, limit, filter) => {
      const idx = new PathIndex();
      idx.addMany(paths);
      const accept = filter === 'all' ? undefined : filter === 'none' ? () => false : (p: string) => !p.includes('b');
      const want = model(paths, prefix, undefined, accept);
      const whole = await idx.scan({ prefix, ...(accept ? { accept } : {}) });
      assert.deepEqual(whole, { paths: want, more: false });
      const got: string[] = [];
      let after: string | undefined;
      for (let pages = 0; ; pages++) {
        assert.ok(pages <= want.length + 1, 'paging terminates');
        const page = await idx.scan({ prefix, limit, ...(after !== undefined ? { after } : {}), ...(accept ? { accept } : {}) });
        assert.ok(page.paths.length <= limit);
        got.push(...page.paths);
        assert.equal(page.more, got.length < want.length, '`more` says exactly whether accepted paths follow');
        if (!page.more) break;
        after = page.paths[page.paths.length - 1];
      }
      assert.deepEqual(got, want);
    },
  ), { numRuns: 400 });
});

test('SEC-20: a scan larger than one chunk yields, and sees paths added meanwhile only after its cursor', async () => {
  const idx = new PathIndex();
  const base = Array.from({ length: 5000 }, (_, i) => `p/${String(i).padStart(5, '0')}`);
  idx.addMany(base);
  const scanning = idx.scan({ prefix: 'p/' });
  // These land while the scan yields between chunks (it reads 2,000 at a time).
  await new Promise((r) => setImmediate(r));
  idx.add('p/00000x'); // before the cursor by then: not in this scan
  idx.add('p/99999'); // after it: in this scan
  const r = await scanning;
  assert.equal(r.more, false);
  assert.equal(new Set(r.paths).size, r.paths.length, 'no duplicates');
  assert.deepEqual(r.paths.filter((p) => !p.endsWith('x') && p !== 'p/99999'), base);
  assert.ok(r.paths.includes('p/99999'));
  assert.ok(!r.paths.includes('p/00000x'));
});

test('index: paging under concurrent inserts returns every earlier path exactly once, never a duplicate', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(pathArb, { minLength: 1, maxLength: 100 }), fc.array(pathArb, { maxLength: 60 }), fc.integer({ min: 1, max: 5 }),
    async (initial, later, limit) => {
      const idx = new PathIndex();
      idx.addMany(initial);
      const got: string[] = [];
      let after: string | undefined;
      let k = 0;
      for (;;) {
        const page = await idx.scan({ limit, ...(after !== undefined ? { after } : {}) });
        got.push(...page.paths);
        // between two pages, other writers create paths (anywhere in the order)
        for (let j = 0; j < 3 && k < later.length; j++) idx.add(later[k++] as string);
        if (!page.more) break;
        after = page.paths[page.paths.length - 1];
      }
      assert.equal(new Set(got).size, got.length, 'never the same path twice');
      assert.deepEqual([...got].sort(), got, 'ascending');
      for (const p of new Set(initial)) assert.ok(got.includes(p), 'every path present before the first page is listed');
    },
  ), { numRuns: 300 });
});

test('scan: a costly accept never holds the event loop for a whole chunk (it yields every few ms, and resumes where it was)', async () => {
  const idx = new PathIndex();
  const all = Array.from({ length: 60 }, (_, i) => `p/${String(i).padStart(3, '0')}`);
  idx.addMany(all);
  let ticks = 0;
  let between = 0; // accept calls that came after another turn of the event loop
  let lastTick = -1;
  const timer = setInterval(() => { ticks++; }, 0);
  try {
    const page = await idx.scan({
      accept: (p) => {
        if (ticks !== lastTick) {
          if (lastTick !== -1) between++;
          lastTick = ticks;
        }
        const until = performance.now() + 2; // a 2 ms decision
        while (performance.now() < until) { /* busy */ }
        return p.endsWith('0');
      },
    });
    assert.deepEqual(page.paths, all.filter((p) => p.endsWith('0')));
    assert.equal(page.more, false);
  } finally {
    clearInterval(timer);
  }
  // 60 decisions of 2 ms, yielding after 8 ms of work: timers ran between them at least every
  // fifth decision (before, the scan yielded only between chunks of 2,000 paths: never here).
  assert.ok(between >= 60 / 5 - 1, `timers ran between decisions ${between} times`);
});

test('FI-13 scan: concurrent costly listings take turns, one slice per turn of the event loop (ten listings never hold it for ten slices)', async () => {
  const idx = new PathIndex();
  const all = Array.from({ length: 40 }, (_, i) => `p/${String(i).padStart(3, '0')}`);
  idx.addMany(all);
  // A turn of the loop is counted by an immediate that re-arms itself.
  let turn = 0;
  let live = true;
  const tick = (): void => { turn++; if (live) setImmediate(tick); };
  setImmediate(tick);
  const sliceTurns: number[][] = [];
  try {
    const pages = await Promise.all(Array.from({ length: 10 }, (_, k) => {
      const seen: number[] = [];
      sliceTurns.push(seen);
      return idx.scan({
        accept: (p) => {
          if (seen[seen.length - 1] !== turn) seen.push(turn);
          const until = performance.now() + 3; // a 3 ms decision: about three per slice
          while (performance.now() < until) { /* busy */ }
          return p.endsWith(String(k % 10));
        },
      });
    }));
    pages.forEach((page, k) => assert.deepEqual(page.paths, all.filter((p) => p.endsWith(String(k % 10)))));
  } finally {
    live = false;
  }
  const byTurn = new Map<number, number>();
  for (const turns of sliceTurns) for (const t of turns) byTurn.set(t, (byTurn.get(t) ?? 0) + 1);
  const crowded = [...byTurn.values()].filter((n) => n > 1).length;
  assert.equal(crowded, 0, `turns in which more than one listing ran a slice: ${crowded}`);
  assert.ok(sliceTurns.every((t) => t.length >= 2), 'each listing ran in several slices');
});

test('scan: an index emptied while a listing waits for its turn (the store closed or locked) fails the listing (store_closed), never a short page', async () => {
  const idx = new PathIndex();
  idx.addMany(Array.from({ length: 50 }, (_, i) => `p/${String(i).padStart(3, '0')}`));
  let decided = 0;
  const listing = idx.scan({
    accept: () => {
      decided++;
      const until = performance.now() + 1;
      while (performance.now() < until) { /* busy */ }
      if (decided === 20) idx.clear(); // closed mid-listing (in a later turn than the scan's start)
      return true;
    },
  });
  await assert.rejects(listing, { code: 'store_closed' });
});

test('scan: a listing whose budget ran out while it waited for its turn decides nothing more', async () => {
  const idx = new PathIndex();
  idx.addMany(['a', 'b', 'c']);
  let decided = 0;
  const page = await idx.scan({ accept: () => { decided++; return true; }, stop: () => true });
  assert.deepEqual([page.paths, page.more, decided], [[], false, 0]);
});

test('scan: stop ends it at once (a listing over its policy budget reads no further)', async () => {
  const idx = new PathIndex();
  idx.addMany(Array.from({ length: 5000 }, (_, i) => `p/${String(i).padStart(5, '0')}`));
  let asked = 0;
  const page = await idx.scan({ accept: () => { asked++; return false; }, stop: () => asked >= 5 });
  assert.equal(asked, 5);
  assert.deepEqual(page, { paths: [], more: false });
});

test('FI-13 scan (property): slices that end before a path (mayDecide false) or put a decision off (accept undefined) list exactly what one decision per path lists, asking each path at most twice', async () => {
  await fc.assert(fc.asyncProperty(
    fc.uniqueArray(fc.stringMatching(/^[a-c]{1,5}$/), { maxLength: 60 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
    fc.array(fc.boolean(), { minLength: 1, maxLength: 16 }),
    fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
    async (paths, mayScript, deferScript, limit) => {
      const idx = new PathIndex();
      idx.addMany(paths);
      const allowed = (p: string): boolean => p.length % 2 === 0 || p.startsWith('b');
      const asked = new Map<string, number>();
      let m = 0;
      let d = 0;
      const page = await idx.scan({
        ...(limit === undefined ? {} : { limit }),
        mayDecide: () => mayScript[m++ % mayScript.length]!,
        turnOfItsOwn: () => Promise.resolve(),
        accept: (p) => {
          const n = asked.get(p) ?? 0;
          asked.set(p, n + 1);
          if (n === 0 && deferScript[d++ % deferScript.length]!) return undefined; // decided at the next slice
          return allowed(p);
        },
      });
      const expected = [...paths].sort().filter(allowed);
      assert.deepEqual(page.paths, limit === undefined ? expected : expected.slice(0, limit));
      assert.equal(page.more, limit !== undefined && expected.length > limit);
      assert.ok([...asked.values()].every((n) => n <= 2), 'no path asked more than twice');
    },
  ), { numRuns: 200 });
});
