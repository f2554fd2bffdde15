/**
 * Warming re2js's matcher before a request needs it (FI-13).
 *
 * The first long match in a process runs in V8's unoptimised code: measured here, the first
 * decision over 100 costly patterns on a 500-character path took 30–60 ms, the following ones
 * 4–7 ms, and that first one held the event loop far past the per-turn budget of pattern work
 * (pacer.ts), which counts work, not time. Once a pattern that needs the regex engine is
 * compiled, the process compiles a few synthetic patterns and runs them on a long synthetic
 * input in the background, one match per turn of the event loop and only in a turn with no
 * other pattern work yet and none waiting for a turn (each match is counted as such), so the hot code is optimised before
 * the policy's first request. About 60–120 ms of CPU (V8 compiling included), once per
 * process; nothing of any request or policy is used.
 */
import { freshTurnWaiting, spendTurnWork, turnWorkFits } from '../../lib/index.js';
import { compileBounded, MAX_PATTERN_PROGRAM, programSize } from '../../patterns/index.js';

/** Shapes that exercise the backtracker's and the NFA's loops (repetition, alternation, classes). */
const SHAPES = ['(.*a.{40})*', '(.*a|.*b/){10}', '([a-z0-9/]?[a-z]?){20}', '(.?){30}', 'x/(.*)/[^/]+/y'];
const ROUNDS = 15;

let started = false;

/** Starts the warm-up once per process (later calls do nothing); it runs in the background. */
export function warmMatcherOnce(): void {
  if (started) return;
  started = true;
  let text = '';
  for (let i = 0; i < 499; i++) text += 'ab/c'[(i * 7 + (i >> 3)) % 4];
  text += 'Q';
  let compiled: Array<{ matcher(s: string): { matches(): boolean } }> | undefined;
  let sizes: number[] = [];
  let step = 0;
  const next = (): void => {
    if (compiled === undefined) {
      const res = SHAPES.map((p) => compileBounded(p)).flatMap((re) => (typeof re === 'string' ? [] : [re]));
      compiled = res;
      sizes = res.map((re) => programSize(re) ?? MAX_PATTERN_PROGRAM);
    } else {
      const k = step % compiled.length;
      const units = (sizes[k] ?? MAX_PATTERN_PROGRAM) * (text.length + 1);
      if (turnWorkFits(units, 0) && !freshTurnWaiting()) { // only in a turn with no pattern work yet, and none waiting
        spendTurnWork(units);
        compiled[k]?.matcher(text).matches();
        step++;
      }
    }
    if (step < ROUNDS * compiled.length) setTimeout(next, 0).unref();
  };
  setTimeout(next, 0).unref();
}
