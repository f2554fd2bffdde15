#!/usr/bin/env bash
# Runs every compiled test file with node:test. Files are passed explicitly: on Node 20,
# `node --test` without file arguments finds no .ts files and reports zero tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only compiled tests whose source still exists: a file moved or deleted in src/ leaves its old
# build output in dist/, which must not run.
mapfile -t found < <(find dist/src dist/test dist/bench -name '*.test.js' 2>/dev/null | sort |
  while read -r f; do src="${f#dist/}"; [ -f "${src%.js}.ts" ] && echo "$f"; done)
# Heaviest files first: files start in this order, N at a time (scripts/run-tests.mjs), so a
# long file started last would run alone at the end. Weights are measured wall seconds
# (scripts/test-weights.txt, written by scripts/test-times.mjs); a file not listed yet counts
# as 60 s under test/e2e (spawns real processes) and 1 s elsewhere. Ties keep name order.
weights=scripts/test-weights.txt
mapfile -t files < <(for f in "${found[@]}"; do echo "$f"; done |
  awk -v wf="$weights" 'BEGIN { while ((getline l < wf) > 0) if (l !~ /^#/ && split(l, a, " ") == 2) w[a[2]] = a[1] }
    { x = ($0 in w) ? w[$0] : ($0 ~ /^dist\/test\/e2e\// ? 60 : 1); printf "%012.1f %06d %s\n", x, NR, $0 }' |
  sort -k1,1r -k2,2n | cut -d' ' -f3-)
if [ "${#files[@]}" -eq 0 ] || [ "${#files[@]}" -ne "${#found[@]}" ]; then
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
exec node scripts/run-tests.mjs --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-600000}" "$@" "${files[@]}"
