#!/usr/bin/env bash
# Runs every compiled test file with node:test. Files are passed explicitly: on Node 20,
# `node --test` without file arguments finds no .ts files and reports zero tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only compiled tests whose source still exists: a file moved or deleted in src/ leaves its old
# build output in dist/, which must not run.
mapfile -t found < <(find dist/src dist/test dist/bench -name '*.test.js' 2>/dev/null | sort |
  while read -r f; do src="${f#dist/}"; [ -f "${src%.js}.ts" ] && echo "$f"; done)
# The plan (scripts/test-plan.mjs): unit test files share a few processes (groups generated
# under dist/.test-groups/), end-to-end files run alone; heaviest first by the measured weights
# in scripts/test-weights.txt, N at a time (scripts/run-tests.mjs), so no long file starts last.
# The in-process unit files and groups run in a lane of their own beside them, TEST_UNIT_CONCURRENCY
# at a time: they mostly wait on timers, so they need not hold one of the N CPU-bound slots.
# TEST_RUN_ID: this shell's pid, which the runner keeps (exec below): the plan writes this run's
# groups into a folder of its own and leaves a concurrent run's alone.
mapfile -t files < <(TEST_RUN_ID=$$ node scripts/test-plan.mjs scripts/test-weights.txt "${found[@]}")
if [ "${#found[@]}" -eq 0 ] || [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under dist/" >&2
  exit 1
fi
# The per-file timeout is a hang guard, not a speed target: the CLI-heavy e2e files are
# CPU-bound (every `spike` call is a process start) and on a shared, saturated 2-core machine
# legitimately take several minutes; a hang still ends the file after 10 minutes.
# TEST_ORDER_ONLY=1 prints the order and runs nothing.
[ "${TEST_ORDER_ONLY:-}" = 1 ] && { printf "%s\n" "${files[@]}"; exit 0; }
# Not `node --test`: on Node 20 it sorts the files by name, so this order was lost (scripts/run-tests.mjs
# runs them as given; it takes the concurrency, timeout, name-pattern and reporter options).
exec node scripts/run-tests.mjs --test-concurrency="${TEST_CONCURRENCY:-2}" --unit-concurrency="${TEST_UNIT_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-600000}" "$@" "${files[@]}"
