#!/usr/bin/env node
// Thin entry point: the implementation lives in src/keeper/ (compiled to dist/). The Keeper's
// V8 settings (src/keeper/lean.ts) are applied before any of its code loads.
import { applyKeeperV8Flags } from "../dist/src/keeper/lean.js";
applyKeeperV8Flags();
const { main } = await import("../dist/src/keeper/main.js");
await main(process.argv.slice(2));
