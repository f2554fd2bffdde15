#!/usr/bin/env node
// `npm start`: the local development stack (src/dev/; run from its bundle when there is a
// current one, bin/load-bundle.js).
import { runCommand } from "./load-bundle.js";

await runCommand("spike-dev", ({ main }) => main(process.argv.slice(2)));
