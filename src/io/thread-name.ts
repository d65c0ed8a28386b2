// Names the calling thread in /proc (ps -L, top -H; bench/cpu-split.js groups CPU time by it).
import * as fs from 'node:fs';

/** Best effort: Linux only, names up to 15 bytes. */
export function nameThread(name: string): void {
  try {
    fs.writeFileSync('/proc/thread-self/comm', name);
  } catch {
    // Not Linux, or not allowed: the name is only a convenience.
  }
}
