#!/usr/bin/env node
// `npm start`: the local development stack (src/dev/).
import { main } from "../dist/src/dev/main.js";
await main(process.argv.slice(2));
