/**
 * Nexus's V8 setting, applied by `bin/spike-nexus.js` before any of Nexus's code is loaded
 * (issue 17, P5: stream encrypt against the bare https pipe).
 *
 * `--semi-space-growth-factor=1`: the young generation stays at its initial size instead of
 * growing (up to 16 MiB per semi-space) after a phase where many objects survived, such as a
 * buffered stream decrypt holding thousands of ciphertext chunks. V8 starts a full
 * (mark-compact) collection when the external memory allocated since the last one (every
 * `Buffer`: request chunks, `cipher.update` output) reaches the old generation's slack minus
 * the young generation's capacity; with a grown young generation that slack was ~7 MB, so a
 * 64 MiB stream ran a mark-compact every 100-200 ms and cost Nexus 460-530 ms of CPU per
 * 64 MiB instead of 300-310 ms (`--trace-gc`, a fresh stack: 2 encrypts, 2 decrypts, 2
 * encrypts). A small young generation is collected often enough to free the dead chunks
 * before that point. It only changes when V8 collects garbage, never what Nexus does.
 */
import v8 from 'node:v8';

export const NEXUS_V8_FLAGS: readonly string[] = ['--semi-space-growth-factor=1'];

/** Applies {@link NEXUS_V8_FLAGS} to this process (idempotent). */
export function applyNexusV8Flags(): void {
  for (const flag of NEXUS_V8_FLAGS) v8.setFlagsFromString(flag);
}
