/**
 * The fault runner (not part of `npm test`): `npm run faults -- [--only=FI-10,FI-19] [--long]`.
 * Runs FI-10, FI-13, FI-16, FI-18 and FI-19 (short forms unless `--long`), one after another, prints one
 * PASS/FAIL line per criterion with the measured figure, and exits 1 if any failed. See
 * docs/faults.md.
 */
import { runFi10 } from './fi10-many-clients.js';
import { runFi12 } from './fi12-bombs.js';
import { runFi13 } from './fi13-redos-storm.js';
import { runFi18 } from './fi18-sigterm.js';
import { runFi16 } from './fi16-svid-rotation.js';
import { runFi19 } from './fi19-soak.js';
import { loadavg, passed, printResult, type RunOptions, type ScenarioResult } from './shared.js';

const SCENARIOS: Record<string, (o: RunOptions) => Promise<ScenarioResult>> = {
  'FI-10': runFi10,
  'FI-12': runFi12,
  'FI-13': runFi13,
  'FI-16': runFi16,
  'FI-18': runFi18,
  'FI-19': runFi19,
};

function parseArgs(argv: readonly string[]): { only: string[]; opts: RunOptions } {
  let only = Object.keys(SCENARIOS);
  const opts: RunOptions = { long: false };
  for (const a of argv) {
    if (a === '--long') opts.long = true;
    else if (a.startsWith('--only=')) {
      only = a.slice('--only='.length).split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      for (const id of only) if (!(id in SCENARIOS)) throw new Error(`unknown scenario ${id} (known: ${Object.keys(SCENARIOS).join(', ')})`);
    } else throw new Error(`unknown argument ${a} (use --only=FI-10,FI-18,FI-19 and/or --long)`);
  }
  return { only, opts };
}

async function main(): Promise<void> {
  const { only, opts } = parseArgs(process.argv.slice(2));
  let ok = true;
  for (const id of only) {
    process.stdout.write(`${id} start (${opts.long ? 'full length' : 'short form'}), load average ${loadavg()}\n`);
    try {
      const r = await SCENARIOS[id]!(opts);
      printResult(r);
      ok &&= passed(r);
    } catch (e) {
      process.stdout.write(`${id} FAIL scenario aborted: ${(e as Error).stack ?? String(e)}\n`);
      ok = false;
    }
  }
  // Exit now: a scenario that aborted may leave a handle open.
  process.exit(ok ? 0 : 1);
}

await main();
