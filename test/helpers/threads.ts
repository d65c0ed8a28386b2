// The threads of this process, seen through /proc/self/task: which worker threads a build started.
import { readFileSync, readdirSync } from 'node:fs';

/** This process's threads now: id -> name. */
export function threadNames(): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.set(t, readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim());
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** This process's threads named `name` now (their ids). */
export function threadsNamed(name: string): string[] {
  return [...threadNames()].filter(([, n]) => n === name).map(([t]) => t);
}

/** Runs fn, collecting the ids of every thread named `name` seen meanwhile (looked at every millisecond). */
export async function watchingThreads<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; seen: Set<string> }> {
  const seen = new Set<string>();
  const look = () => threadsNamed(name).forEach((t) => seen.add(t));
  const timer = setInterval(look, 1);
  try {
    const value = await fn();
    look();
    return { value, seen };
  } finally {
    clearInterval(timer);
  }
}
