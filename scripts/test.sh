#!/usr/bin/env bash
# Runs every compiled test file with node:test. Files are passed explicitly: on Node 20,
# `node --test` without file arguments finds no .ts files and reports zero tests.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/src dist/test dist/bench -name '*.test.js' 2>/dev/null | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under dist/" >&2
  exit 1
fi
exec node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout="${TEST_TIMEOUT_MS:-300000}" "$@" "${files[@]}"
