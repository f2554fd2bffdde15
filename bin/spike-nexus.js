#!/usr/bin/env node
// Thin entry point: the implementation lives in src/nexus/ (compiled to dist/). Nexus's optional
// V8 setting (src/nexus/v8-flags.ts, SPIKE_NEXUS_V8_YOUNG_GENERATION) is applied before any of
// its code loads.
import { applyNexusV8Flags } from "../dist/src/nexus/v8-flags.js";
const bad = applyNexusV8Flags();
if (bad !== undefined) {
  process.stderr.write(`spike-nexus: ${bad}\n`);
  process.exitCode = 1;
} else {
  const { main } = await import("../dist/src/nexus/main.js");
  await main(process.argv.slice(2));
}
