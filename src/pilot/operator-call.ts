/**
 * One operator command that is a single Nexus call: the format options, the call under the
 * command's gate, the answer rendered as JSON/YAML or as the human text, and (in JSON/YAML
 * mode, where the human text is not printed) an optional warning line on stderr.
 */
import type { Command } from 'commander';
import type { NexusClient } from '../sdk/index.js';
import { act, type Gate, type PilotContext } from './context.js';
import { addFormatOptions, parseFormat, render, type FormatOpts } from './format.js';

export interface OperatorCall<R> {
  name: string;
  description: string;
  gate: Gate;
  call(client: NexusClient): Promise<R>;
  /** The machine-readable answer (JSON/YAML). */
  data(r: R): unknown;
  human(r: R): string;
  /** A warning for stderr in JSON/YAML mode (the human text already carries it). */
  note?(r: R): string | undefined;
}

export function registerOperatorCall<R>(operator: Command, ctx: PilotContext, c: OperatorCall<R>): void {
  addFormatOptions(operator.command(c.name).description(c.description)).action(
    act(ctx, 'operator', c.name, async (o: FormatOpts) => {
      const format = parseFormat(o.format, o.json);
      const r = await c.call(await ctx.nexus(c.gate));
      ctx.out(render(format, c.data(r), () => c.human(r)));
      const note = format === 'human' ? undefined : c.note?.(r);
      if (note !== undefined) ctx.note(note);
    }),
  );
}
