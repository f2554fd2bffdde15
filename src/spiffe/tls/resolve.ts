/**
 * The address a client dials for a host name, looked up before `tls.connect` (start-up time of
 * short-lived clients such as the CLI, issue 15). Given a host name, `node:net` checks it with
 * `net.isIP` before its lookup and `tls.connect` checks the SNI name the same way: for a name
 * both fail Node's IPv4 test and run its large IPv6 pattern, which V8 compiles on the first
 * call and compiles again to native code on the second (15–50 ms of a CLI call's CPU on a busy
 * machine). Handing Node an IP address, and the SNI name through `setServername` the way
 * `tls.connect` itself does, skips both.
 *
 * Same lookup as `node:net`'s (`dns.lookup` for every address, `ADDRCONFIG` except on
 * Windows), and only a name with exactly one distinct address is resolved here: that is the
 * case where `node:net` also connects to the address directly. A name with several addresses
 * is left to `node:net` (its family auto-selection tries them in turn), as before.
 *
 * A short-lived client may start the lookup early (`prefetchLookup`, e.g. while it waits for
 * its SVID): the next dial of that name within a few seconds takes that answer, once.
 * The lookup itself is the one place the IPv6 pattern still runs (`dns.lookup` checks the name
 * with `net.isIP`): it runs with V8's regexp optimizer off (regexp-compile.ts), which makes
 * that pattern's compiles ~2 ms instead of 10–50 ms. That holds for every lookup, not only a
 * prefetch: the servers dial by name too (Nexus its Keepers, Bootstrap the Keepers and Nexus,
 * usually `localhost`), and their first dials paid the same compiles during start-up.
 */
import { createRequire } from 'node:module';
import type { LookupAddress } from 'node:dns';
import tls, { type TLSSocket } from 'node:tls';
import { withoutRegexpOptimization } from './regexp-compile.js';

// node:dns is loaded on the first lookup: a client dialling IP addresses never loads it.
const requireBuiltin = createRequire(import.meta.url);
let dnsModule: typeof import('node:dns') | undefined;

type LookupCallback = (err: Error | null, address?: string) => void;

/** How long a prefetched answer may wait for its dial. */
export const PREFETCH_TTL_MS = 5_000;

/** A lookup started by `prefetchLookup`: when, its answer once it is in, and who waits for it. */
interface Prefetch {
  at: number;
  answer?: [Error | null, string | undefined];
  waiting: LookupCallback[];
}

const prefetched = new Map<string, Prefetch>();

/** Starts looking up `host` (a host name) now, for the next dial of it (see the module comment). */
export function prefetchLookup(host: string): void {
  const entry: Prefetch = { at: Date.now(), waiting: [] };
  prefetched.set(host, entry);
  resolveNow(host, (err, address) => {
    entry.answer = [err, address];
    for (const cb of entry.waiting.splice(0)) cb(err, address);
  });
}

/**
 * Resolves `host` (a host name, not an IP literal) like `node:net` would: `address` is the one
 * distinct address it has, or undefined when it has several (dial the name then). A failed
 * lookup is the error `node:net` would have reported. Takes a fresh prefetched answer if any.
 */
export function lookupSingle(host: string, callback: LookupCallback): void {
  const early = prefetched.get(host);
  if (early !== undefined) {
    prefetched.delete(host); // used once: a later dial looks the name up again
    if (Date.now() - early.at <= PREFETCH_TTL_MS) {
      if (early.answer === undefined) early.waiting.push(callback);
      else {
        const [err, address] = early.answer;
        process.nextTick(callback, err, address);
      }
      return;
    }
  }
  resolveNow(host, callback);
}

function resolveNow(host: string, callback: LookupCallback): void {
  const dns = (dnsModule ??= requireBuiltin('node:dns') as typeof import('node:dns'));
  const hints = process.platform === 'win32' ? 0 : dns.ADDRCONFIG;
  // The optimizer is off only while dns.lookup checks the name (synchronously), see the top.
  withoutRegexpOptimization(() =>
    dns.lookup(host, { all: true, hints }, (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
      if (err) callback(err);
      else callback(null, singleAddress(addresses));
    }),
  );
}

/** The one distinct IPv4/IPv6 address of a lookup answer, or undefined (none, or several). */
export function singleAddress(addresses: readonly LookupAddress[]): string | undefined {
  const distinct = new Set(addresses.filter((a) => a.family === 4 || a.family === 6).map((a) => a.address));
  return distinct.size === 1 ? (distinct.values().next().value as string) : undefined;
}

/** Does this Node's TLSSocket let a client set its SNI name after `tls.connect` (as `tls.connect` does)? */
export const canSetServername: boolean =
  typeof (tls.TLSSocket.prototype as unknown as { setServername?: unknown }).setServername === 'function';

/** Sets the SNI name of a client socket that has not sent its ClientHello yet. */
export function setServername(socket: TLSSocket, name: string): void {
  (socket as unknown as { setServername(n: string): void }).setServername(name);
}
