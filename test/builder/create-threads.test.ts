// Worker threads start with their first task (issue 14, CLI start): a build with no file data
// (an empty directory) starts neither the chunk workers nor the blob writer; a build with data
// starts both. Threads are seen in /proc/self/task while the build runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-threads-'));
  await mkdir(join(work, 'empty'));
  await mkdir(join(work, 'data'));
  await writeFile(join(work, 'data', 'f'), randomBytes(3 << 20));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** This process's threads now: id -> name. */
function threads(): Map<string, string> {
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

/**
 * Builds `dir` with 2 workers; returns the threads that appeared while it ran (a worker is a
 * new thread from its start, named only once its module has loaded), with their last names.
 */
async function threadsDuringBuild(dir: string, out: string): Promise<Map<string, string>> {
  const before = threads();
  const seen = new Map<string, string>();
  const look = () => {
    for (const [t, name] of threads()) if (!before.has(t)) seen.set(t, name);
  };
  const timer = setInterval(look, 1);
  try {
    await create({ source: dir, bootstrap: join(work, `${out}.boot`), blob: join(work, `${out}.blob`), threads: 2, repeatable: true });
  } finally {
    clearInterval(timer);
  }
  look();
  return seen;
}

describe('worker threads start with their first task', () => {
  // First: it also starts libuv's thread pool, which the empty build would otherwise start.
  it('a build with file data starts the chunk workers and the blob writer (the probe sees them)', async () => {
    const names = [...(await threadsDuringBuild(join(work, 'data'), 'data')).values()];
    expect(names).toContain('nydus-chunks');
    expect(names).toContain('nydus-writer');
  });

  it('an empty directory is built without starting any thread', async () => {
    const seen = await threadsDuringBuild(join(work, 'empty'), 'empty');
    expect([...seen.values()]).toEqual([]);
  });
});
