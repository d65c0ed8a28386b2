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

/**
 * Runs fn, looking at this process's threads every millisecond (and once more at the end): the
 * threads `take` accepted, by id, with the last name seen.
 */
export async function watchThreads<T>(fn: () => Promise<T>, take: (id: string, name: string) => boolean): Promise<{ value: T; seen: Map<string, string> }> {
  const seen = new Map<string, string>();
  const look = () => {
    for (const [t, n] of threadNames()) if (take(t, n)) seen.set(t, n);
  };
  const timer = setInterval(look, 1);
  try {
    const value = await fn();
    look();
    return { value, seen };
  } finally {
    clearInterval(timer);
  }
}

/** Runs fn, collecting the ids of every thread named `name` seen meanwhile. */
export async function watchingThreads<T>(name: string, fn: () => Promise<T>): Promise<{ value: T; seen: Set<string> }> {
  const { value, seen } = await watchThreads(fn, (_, n) => n === name);
  return { value, seen: new Set(seen.keys()) };
}
