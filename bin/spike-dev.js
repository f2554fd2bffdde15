#!/usr/bin/env node
// `npm start`: the local development stack (src/dev/; run from its bundle when there is a
// current one, bin/load-bundle.js).
"use strict";
const { runCommand, runEntry } = require("./load-bundle.js");

runEntry(() => runCommand("spike-dev", ({ main }) => main(process.argv.slice(2))));
