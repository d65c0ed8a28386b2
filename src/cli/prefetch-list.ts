// The prefetch list `--prefetch-policy fs` reads from stdin, as the converter pipes it: one path
// per line, blank lines skipped. No list when stdin is a terminal, closed or unreadable.
import * as fs from 'node:fs';

export function readPrefetchList(): string[] {
  if (process.stdin.isTTY) return [];
  try {
    return fs.readFileSync(0, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  } catch {
    return [];
  }
}
