#!/usr/bin/env node
// Thin entry point: the implementation lives in src/agent/ (compiled to dist/).
import { main } from "../dist/src/agent/main.js";
await main(process.argv.slice(2));
