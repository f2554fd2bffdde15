#!/usr/bin/env node
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
// Commands that handle Shamir shards (operator recover/restore/verify-shard) first make the
// process non-dumpable (ENV-08, src/lib/hardening.ts); everyday commands skip that cost.
// Start-up time (issue 15): when scripts/bundle-cli.mjs has bundled the CLI into one file
// (dist/cli/spike.mjs) from the compiled code that is there now, that file is loaded instead of
// ~300 modules; its stamp must match dist/src/pilot/main.js, so a later `tsc` run is never
// shadowed by an older bundle.
import { readFileSync, statSync } from "node:fs";
import { hardenCli, isShardCommand } from "../dist/src/lib/hardening.js";

function entry() {
  try {
    const stamp = readFileSync(new URL("../dist/cli/spike.stamp", import.meta.url), "utf8");
    if (stamp === String(statSync(new URL("../dist/src/pilot/main.js", import.meta.url)).mtimeMs)) return "../dist/cli/spike.mjs";
  } catch {
    /* no bundle: run from dist/src/ */
  }
  return "../dist/src/pilot/main.js";
}

const argv = process.argv.slice(2);
if (!isShardCommand(argv) || hardenCli("spike", "required")) {
  const { main } = await import(entry());
  await main(argv);
}
