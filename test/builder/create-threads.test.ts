// Worker threads start with their first task (issue 14, CLI start): a build with no file data
// (an empty directory) starts neither the chunk workers nor the blob writer; a build with data
// starts both. Without --threads, a build of less than 32 MiB of chunks starts neither either (it
// runs on the main thread), one of more starts both. Threads are seen in /proc/self/task while
// the build runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { create } from '../../src/builder/create.js';
import { threadNames, watchThreads } from '../helpers/threads.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-threads-'));
  await mkdir(join(work, 'empty'));
  await mkdir(join(work, 'data'));
  await writeFile(join(work, 'data', 'f'), randomBytes(3 << 20));
  await mkdir(join(work, 'large'));
  for (let i = 0; i < 3; i++) await writeFile(join(work, 'large', `f${i}`), randomBytes(11 << 20));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * Builds `dir` with 2 workers (or `count`, or as many as create picks); returns the threads that
 * appeared while it ran (a worker is a new thread from its start, named only once its module has
 * loaded), with their last names.
 */
async function threadsDuringBuild(dir: string | (() => Readable), out: string, count: number | 'default' = 2, inlineSmall?: boolean): Promise<Map<string, string>> {
  const before = threadNames();
  const source = typeof dir === 'string' ? { source: dir } : { type: 'tar-rafs', source: dir() };
  const { seen } = await watchThreads(
    () => create({ ...source, bootstrap: join(work, `${out}.boot`), blob: join(work, `${out}.blob`), threads: count === 'default' ? undefined : count, inlineSmall, repeatable: true }),
    (t) => !before.has(t),
  );
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

describe('without --threads, a small build runs on the main thread', () => {
  it('less than 32 MiB of chunks: no chunk worker, no blob writer, and the same bytes as with them', async () => {
    const seen = await threadsDuringBuild(join(work, 'data'), 'small-default', 'default');
    expect([...seen.values()]).not.toContain('nydus-chunks');
    expect([...seen.values()]).not.toContain('nydus-writer');
    await threadsDuringBuild(join(work, 'data'), 'small-two', 2);
    for (const ext of ['boot', 'blob']) {
      expect(readFileSync(join(work, `small-default.${ext}`)).equals(readFileSync(join(work, `small-two.${ext}`))), ext).toBe(true);
    }
  });

  it('33 MiB of chunks: the chunk workers and the blob writer start', async () => {
    const names = [...(await threadsDuringBuild(join(work, 'large'), 'large-default', 'default')).values()];
    expect(names).toContain('nydus-chunks');
    expect(names).toContain('nydus-writer');
  });

  it('--threads given: its workers run even for a small build, unless inlineSmall (nydusify convert\'s layers)', async () => {
    const names = [...(await threadsDuringBuild(join(work, 'data'), 'small-one', 1)).values()];
    expect(names).toContain('nydus-chunks');
    expect(names).toContain('nydus-writer');
    const inline = [...(await threadsDuringBuild(join(work, 'data'), 'small-one-inline', 1, true)).values()];
    expect(inline).not.toContain('nydus-chunks');
    expect(inline).not.toContain('nydus-writer');
  });

  it('a small tar arriving slowly (a stream: no time limit, only its size) is built on the main thread too', async () => {
    const tar = execFileSync('tar', ['-cf', '-', '-C', join(work, 'data'), '.'], { maxBuffer: 64 << 20 });
    // 64 KiB every 5 ms: some 250 ms for the whole tar, far past the walk's 30 ms.
    const slow = () => Readable.from((async function* () {
      for (let at = 0; at < tar.length; at += 64 << 10) {
        await new Promise((r) => setTimeout(r, 5));
        yield tar.subarray(at, at + (64 << 10));
      }
    })());
    const seen = [...(await threadsDuringBuild(slow, 'tar-default', 'default')).values()];
    expect(seen).not.toContain('nydus-chunks');
    expect(seen).not.toContain('nydus-writer');
    await threadsDuringBuild(() => Readable.from([tar]), 'tar-two', 2);
    for (const ext of ['boot', 'blob']) {
      expect(readFileSync(join(work, `tar-default.${ext}`)).equals(readFileSync(join(work, `tar-two.${ext}`))), ext).toBe(true);
    }
  });
});
