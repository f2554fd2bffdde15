#!/usr/bin/env node
// Thin entry point: the implementation lives in src/agent/ (compiled to dist/; run from its
// bundle when there is a current one, bin/load-bundle.js). The dev CA key is on disk anyway, so
// core dumps are disabled best-effort (a warning if that fails; src/lib/hardening.ts) before
// the agent starts.
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

runEntry(() => runCommand("spike-agent", ({ hardenCli, main }) => {
  hardenCli("spike-agent", "best-effort");
  return main(process.argv.slice(2));
}));
