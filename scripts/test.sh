#!/usr/bin/env bash
# Runs every compiled test file with node:test. Files are passed explicitly: on Node 20,
# `node --test` without file arguments finds no .ts files and reports zero tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only compiled tests whose source still exists: a file moved or deleted in src/ leaves its old
# build output in dist/, which must not run.
mapfile -t files < <(find dist/src dist/test dist/bench -name '*.test.js' 2>/dev/null | sort |
  while read -r f; do src="${f#dist/}"; [ -f "${src%.js}.ts" ] && echo "$f"; done)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under dist/" >&2
  exit 1
fi
# The per-file timeout is a hang guard, not a speed target: the CLI-heavy e2e files are
# CPU-bound (every `spike` call is a process start) and on a shared, saturated 2-core machine
# legitimately take several minutes; a hang still ends the file after 10 minutes.
exec node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-600000}" "$@" "${files[@]}"
