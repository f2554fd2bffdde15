#!/usr/bin/env node
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
import { main } from "../dist/src/pilot/main.js";
await main(process.argv.slice(2));
