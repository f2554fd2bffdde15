#!/usr/bin/env node
// Thin entry point: the implementation lives in src/bootstrap/ (compiled to dist/; run from its
// bundle when there is a current one, bin/load-bundle.js).
import { runCommand } from "./load-bundle.js";

await runCommand("spike-bootstrap", ({ main }) => main(process.argv.slice(2)));
