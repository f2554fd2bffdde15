#!/usr/bin/env node
// Thin entry point: the implementation lives in src/agent/ (compiled to dist/).
// The dev CA key is on disk anyway, so core dumps are disabled best-effort (a warning if
// that fails; src/lib/hardening.ts).
import { hardenCli } from "../dist/src/lib/hardening.js";
import { main } from "../dist/src/agent/main.js";
hardenCli("spike-agent", "best-effort");
await main(process.argv.slice(2));
