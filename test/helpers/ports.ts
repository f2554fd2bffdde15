/**
 * Free TCP ports for servers a test starts later, reserved across every test process on the
 * machine.
 *
 * A port is chosen at random BELOW Linux's ephemeral range (32768+), so an outgoing connection
 * of another process cannot take it meanwhile, and it is reserved by creating
 * `<tmpdir>/spike-test-ports/<port>` exclusively (O_EXCL) with this process's pid in it. The
 * reservation lasts as long as the process: a Keeper restarted on its old port by one test file
 * can no longer lose that port to another file probing in the gap (an EADDRINUSE seen in CI).
 * A reservation whose process is gone is taken over; this process's own are removed at exit.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomInt } from 'node:crypto';

const DIR = path.join(os.tmpdir(), 'spike-test-ports');
const mine = new Set<string>();
let exitHook = false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the reservation file of `port`, or says it belongs to a live process. */
function reserve(port: number): boolean {
  const file = path.join(DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      mine.add(file);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const f of mine) fs.rmSync(f, { force: true });
        });
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
      // An empty file is a reservation being written right now: leave it alone.
      if (!Number.isSafeInteger(owner) || owner <= 0 || alive(owner)) return false;
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  return false;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A loopback port no other test process holds or has reserved, reserved for this process. */
export async function freePort(): Promise<number> {
  fs.mkdirSync(DIR, { recursive: true, mode: 0o1777 });
  for (;;) {
    const port = randomInt(20_000, 32_000);
    if (!reserve(port)) continue;
    if (await bindable(port)) return port;
    // Bound by something outside the test suite: keep the reservation (so nobody retries it)
    // and pick another.
  }
}
