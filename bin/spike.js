#!/usr/bin/env node
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
// Commands that handle Shamir shards (operator recover/restore/verify-shard) first make the
// process non-dumpable (ENV-08, src/lib/hardening.ts); everyday commands skip that cost.
import { hardenCli, isShardCommand } from "../dist/src/lib/hardening.js";
import { main } from "../dist/src/pilot/main.js";
const argv = process.argv.slice(2);
if (!isShardCommand(argv) || hardenCli("spike", "required")) await main(argv);
