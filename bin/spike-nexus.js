#!/usr/bin/env node
// Thin entry point: the implementation lives in src/nexus/ (compiled to dist/).
import { main } from "../dist/src/nexus/main.js";
await main(process.argv.slice(2));
