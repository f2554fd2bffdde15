#!/usr/bin/env node
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
// Commands that handle Shamir shards (operator recover/restore/verify-shard) first make the
// process non-dumpable (ENV-08, src/lib/hardening.ts); everyday commands skip that cost (and
// the module: only a command line naming `operator` loads it).
// Start-up time (issue 15): the code runs from its bundle with a V8 code cache when there is a
// current one (bin/load-bundle.js).
import { runCommand } from "./load-bundle.js";

const argv = process.argv.slice(2);
let run = true;
if (argv.includes("operator")) {
  const { hardenCli, isShardCommand } = await import("../dist/src/lib/hardening.js");
  run = !isShardCommand(argv) || hardenCli("spike", "required");
}
if (run) await runCommand("spike", ({ main }) => main(argv));
