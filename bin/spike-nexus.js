#!/usr/bin/env node
// Thin entry point: the implementation lives in src/nexus/ (compiled to dist/). Nexus's V8
// setting (src/nexus/v8-flags.ts) is applied before any of its code loads.
import { applyNexusV8Flags } from "../dist/src/nexus/v8-flags.js";
applyNexusV8Flags();
const { main } = await import("../dist/src/nexus/main.js");
await main(process.argv.slice(2));
