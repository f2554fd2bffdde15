#!/usr/bin/env node
// Thin entry point: the implementation lives in src/nexus/ (compiled to dist/; run from its
// bundle when there is a current one, bin/load-bundle.js). Nexus's optional V8 setting
// (src/nexus/v8-flags.ts, SPIKE_NEXUS_V8_YOUNG_GENERATION) is applied before any of its code
// loads or compiles.
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

runEntry(async () => {
  // dist/src/ is ES modules, which a CommonJS file loads with import().
  const { applyNexusV8Flags } = await import("../dist/src/nexus/v8-flags.js");
  const bad = applyNexusV8Flags();
  if (bad === undefined) return runCommand("spike-nexus", ({ main }) => main(process.argv.slice(2)));
  process.stderr.write(`spike-nexus: ${bad}\n`);
  process.exitCode = 1;
  return undefined;
});
