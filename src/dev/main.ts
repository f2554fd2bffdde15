/** `npm start`: not built yet (issue 4). Prints a notice and exits 2. */
export async function main(_argv: string[]): Promise<void> {
  process.stderr.write('spike-dev: the local stack is not implemented yet (see README, "Status")\n');
  process.exitCode = 2;
}
