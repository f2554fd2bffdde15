/**
 * glibc allocator settings for the long-running servers (Nexus, Keepers), read by glibc when a
 * process starts, never by SPIKE. TLS handshakes and request bodies are allocated by OpenSSL and
 * Node outside the JavaScript heap, from several threads; with glibc's defaults, memory freed
 * after a burst of connections stays with the process:
 * - `MALLOC_ARENA_MAX=2`: two arenas instead of eight per core, so freed chunks are not spread
 *   over many arenas that each keep their own free memory;
 * - `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_` at glibc's own starting value
 *   (128 KiB): setting them turns off glibc's dynamic threshold, which after the first large
 *   block is freed raises the trim threshold up to 64 MiB, so free memory at the top of a heap
 *   was kept instead of returned.
 * The shipped systemd units and Kubernetes manifests set the same values (a test compares
 * them with this table); `npm start` sets them for its children unless already set.
 */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_TRIM_THRESHOLD_: '131072',
  MALLOC_MMAP_THRESHOLD_: '131072',
});
