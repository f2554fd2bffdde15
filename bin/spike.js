#!/bin/sh
":" //; case " $NODE_OPTIONS " in *" --use-bundled-ca "*) exec node -- "$0" "$@";; esac; exec node --use-openssl-ca -- "$0" "$@"
// The two lines above are a launcher (issue 15: start-up time) that is both a shell script and
// JavaScript. Run as a command (`spike …`, the npm bin link, `./bin/spike.js`), /bin/sh reads
// them and starts `node --use-openssl-ca` on this same file; Node skips the first line and reads
// the second as a string statement followed by a comment. `--use-openssl-ca` only keeps Node 20
// from parsing its ~140 bundled root certificates, which it otherwise does for the first TLS
// context that is given a `ca` list, as every `spike` connection to Nexus is: that context
// trusts only the SPIFFE bundle either way, and the SPIFFE checks of Nexus's chain and ID run as
// before (docs/cli-performance.md). Started as `node bin/spike.js`, none of this applies and the
// command behaves the same, a little slower. When NODE_OPTIONS asks for Node's bundled store
// (`--use-bundled-ca`, which Node refuses together with the flag), the flag is left out.
// Thin entry point: the implementation lives in src/pilot/ (compiled to dist/).
// Commands that handle Shamir shards (operator recover/restore/verify-shard, audit verify --shard) first make the
// process non-dumpable (ENV-08, src/lib/hardening.ts); everyday commands skip that cost (and
// the module: only a command line naming `operator` or `audit` loads it).
// Start-up time (issue 15): the code runs from its bundle with a V8 code cache when there is a
// current one (bin/load-bundle.js).
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

const argv = process.argv.slice(2);
runEntry(async () => {
  if (argv.includes("operator") || argv.includes("audit")) {
    // dist/src/ is ES modules, which a CommonJS file loads with import().
    const { hardenCli, isShardCommand } = await import("../dist/src/lib/hardening.js");
    if (isShardCommand(argv) && !hardenCli("spike", "required")) return undefined;
  }
  return runCommand("spike", ({ main }) => main(argv));
});
