#!/usr/bin/env node
// Thin entry point: the implementation lives in src/keeper/ (compiled to dist/).
import { main } from "../dist/src/keeper/main.js";
await main(process.argv.slice(2));
