/**
 * Nexus's optional V8 setting, applied by `bin/spike-nexus.js` before any of Nexus's code is
 * loaded (issue 17, P5: stream encrypt against the bare https pipe), chosen with
 * `SPIKE_NEXUS_V8_YOUNG_GENERATION`: `default` (unset: V8's own sizing) or `small`.
 *
 * `small` sets `--semi-space-growth-factor=1`: the young generation stays at its initial size
 * instead of growing (up to 16 MiB per semi-space) after a phase where many objects survived
 * (a burst of requests, a buffered stream decrypt holding thousands of ciphertext chunks). V8
 * starts a full (mark-compact) collection when the external memory allocated since the last
 * one (every `Buffer`: request chunks, `cipher.update` output) passes a small step (~8 MB at
 * Nexus's heap size); a stream allocates little JavaScript per chunk, so with a grown young
 * generation scavenges (which would free the dead chunks) are rare and a 64 MiB stream ran a
 * mark-compact every 100-200 ms: 460-530 ms of Nexus CPU per 64 MiB instead of 270-330 ms.
 * The price is more frequent scavenges under request load: about 19% more Nexus CPU per PUT
 * with 64 writers (`p2.cpu.c64`), which is why it is not the default. It only changes when V8
 * collects garbage, never what Nexus does.
 */
import v8 from 'node:v8';

export const NEXUS_SMALL_YOUNG_GENERATION_FLAGS: readonly string[] = ['--semi-space-growth-factor=1'];
export const NEXUS_YOUNG_GENERATION_ENV = 'SPIKE_NEXUS_V8_YOUNG_GENERATION';

/**
 * Applies the setting chosen in `env` (idempotent). Returns the one-line error for a value
 * other than `default`, `small` or unset (the caller reports it and stops), else undefined.
 */
export function applyNexusV8Flags(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[NEXUS_YOUNG_GENERATION_ENV];
  if (v === undefined || v === '' || v === 'default') return undefined;
  if (v !== 'small') return `${NEXUS_YOUNG_GENERATION_ENV} must be "default" or "small"`;
  for (const flag of NEXUS_SMALL_YOUNG_GENERATION_FLAGS) v8.setFlagsFromString(flag);
  return undefined;
}
