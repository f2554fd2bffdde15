#!/usr/bin/env node
// Thin entry point: the implementation lives in src/bootstrap/ (compiled to dist/; run from its
// bundle when there is a current one, bin/load-bundle.js).
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

runEntry(() => runCommand("spike-bootstrap", ({ main }) => main(process.argv.slice(2))));
