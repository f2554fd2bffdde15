#!/usr/bin/env node
// Thin entry point: the implementation lives in src/bootstrap/ (compiled to dist/).
import { main } from "../dist/src/bootstrap/main.js";
await main(process.argv.slice(2));
