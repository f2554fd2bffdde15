#!/usr/bin/env node
// Thin entry point: the implementation lives in src/keeper/ (compiled to dist/; run from its
// bundle when there is a current one, bin/load-bundle.js). The Keeper's V8 settings
// (src/keeper/lean.ts) are applied before any of its code loads or compiles, and so before its
// code cache is read (V8 accepts only a cache made under the same flags).
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

runEntry(async () => {
  // dist/src/ is ES modules, which a CommonJS file loads with import().
  const { applyKeeperV8Flags } = await import("../dist/src/keeper/lean.js");
  applyKeeperV8Flags();
  return runCommand("spike-keeper", ({ main }) => main(process.argv.slice(2)));
});
