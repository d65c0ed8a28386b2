// A test file's scratch directory: made before its tests, removed after them, with numbered
// subdirectories handed out fresh so no two builds share one.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface Scratch {
  /** The directory (set once the file's beforeAll ran). */
  readonly dir: string;
  /** A path under the directory. */
  path(...parts: string[]): string;
  /** A new empty directory `<name>-<n>` under it. */
  fresh(name: string): Promise<string>;
}

/** Registers the file's beforeAll/afterAll for a directory named `<prefix>XXXXXX` in the temp dir. */
export function scratch(prefix: string): Scratch {
  let dir = '';
  let seq = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    path: (...parts) => join(dir, ...parts),
    async fresh(name) {
      const d = join(dir, `${name}-${++seq}`);
      await mkdir(d);
      return d;
    },
  };
}
