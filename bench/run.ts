/**
 * `npm run bench`: runs every bench module and prints one Markdown table. A later issue
 * extends the harness (more modules, baselines, JSON output).
 */
import { benchCrypto } from './crypto.js';
import type { BenchResult } from './types.js';

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function toMarkdown(results: readonly BenchResult[]): string {
  const rows = results.map((r) =>
    `| ${r.id} | ${r.name} | ${fmt(r.value)} | ${r.unit} | ${r.baseline === undefined ? '' : fmt(r.baseline)} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2)} | ${r.note ?? ''} |`);
  return ['| id | benchmark | value | unit | baseline | ratio | note |', '|---|---|---:|---|---:|---:|---|', ...rows].join('\n');
}

async function main(): Promise<void> {
  const results: BenchResult[] = [...(await benchCrypto())];
  process.stdout.write(`# Benchmarks (node ${process.version}, ${process.platform}/${process.arch})\n\n${toMarkdown(results)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
  process.exitCode = 1;
});
