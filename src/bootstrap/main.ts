/**
 * Entry point of the `bootstrap` component. Not built yet: prints usage and exits 2
 * until its issue lands (see README, "Status").
 */
export async function main(_argv: string[]): Promise<void> {
  process.stderr.write('bootstrap: not implemented yet (see README, "Status")\n');
  process.exitCode = 2;
}
