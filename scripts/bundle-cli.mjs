// The former name of scripts/bundle-bins.mjs (which now bundles every command, the CLI
// included), kept so `node scripts/bundle-cli.mjs` after `tsc` still does the whole job.
await import('./bundle-bins.mjs');
