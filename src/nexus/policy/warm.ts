/**
 * Warming re2js's matcher before a request needs it (FI-13).
 *
 * The first long match in a process runs in V8's unoptimised code: measured here, the first
 * decision over 100 costly patterns on a 500-character path took 30–50 ms, the following ones
 * 4–7 ms, and that first one held the event loop far past the per-turn budget of pattern work
 * (pacer.ts), which counts work, not time. Once a pattern that needs the regex engine is
 * compiled, the process runs a few synthetic matches on a long synthetic input, one per turn
 * of the event loop (each at most a few milliseconds), so the hot code is optimised before
 * the policy's first request. About 60–120 ms of CPU (V8 compiling included), once per process; nothing of any request
 * or policy is used.
 */
import { compileBounded } from '../../patterns/index.js';

/** Shapes that exercise the backtracker's and the NFA's loops (repetition, alternation, classes). */
const SHAPES = ['(.*a.{40})*', '(.*a|.*b/){10}', '([a-z0-9/]?[a-z]?){20}', '(.?){30}', 'x/(.*)/[^/]+/y'];
const ROUNDS = 15;

let started = false;

/** Starts the warm-up once per process (later calls do nothing); it runs in the background. */
export function warmMatcherOnce(): void {
  if (started) return;
  started = true;
  const compiled = SHAPES.map((p) => compileBounded(p)).filter((re) => typeof re !== 'string');
  let text = '';
  for (let i = 0; i < 499; i++) text += 'ab/c'[(i * 7 + (i >> 3)) % 4];
  text += 'Q';
  let step = 0;
  const total = ROUNDS * compiled.length;
  const next = (): void => {
    const re = compiled[step % compiled.length];
    if (re !== undefined) re.matcher(text).matches();
    if (++step < total) setTimeout(next, 0).unref();
  };
  setTimeout(next, 0).unref();
}
