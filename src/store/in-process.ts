/**
 * In-process system records (public bytes: commitments, sharing parameters, key-check
 * record) for the stores that keep nothing on disk (`memory`, `lite`). Values are copied in
 * and out, so callers can neither alias nor mutate what is held.
 */
export class SystemRecords {
  readonly #map = new Map<string, Uint8Array>();

  get(key: string): Uint8Array | null {
    const v = this.#map.get(key);
    return v ? new Uint8Array(v) : null;
  }

  putIfAbsent(key: string, value: Uint8Array): boolean {
    if (this.#map.has(key)) return false;
    this.#map.set(key, new Uint8Array(value));
    return true;
  }

  put(key: string, value: Uint8Array): void {
    this.#map.set(key, new Uint8Array(value));
  }

  clear(): void {
    this.#map.clear();
  }
}
