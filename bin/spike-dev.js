#!/usr/bin/env node
// `npm start`: the local development stack (src/dev/; run from its bundle when there is a
// current one, bin/load-bundle.js).
"use strict";
const { runCommand } = require("./load-bundle.js");

runCommand("spike-dev", ({ main }) => main(process.argv.slice(2)));
