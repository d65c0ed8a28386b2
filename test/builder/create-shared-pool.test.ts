// Builds that share one worker pool (CreateOptions.pool, what nydusify's concurrent layers use):
// their bytes are those of the same builds each with a pool of its own; the pool's threads are the
// only chunk workers; a build never ends the pool, not even when it fails; and a small build with
// inlineSmall runs on the main thread without starting the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { create } from '../../src/builder/create.js';
import { ChunkPool } from '../../src/pipeline/pool.js';
import { sha256Hex as sha } from '../helpers/oci.js';
import { prng } from '../helpers/tree.js';
import { watchingThreads } from '../helpers/threads.js';
import { file, tar } from '../sources/craft.js';

const MiB = 1 << 20;

const tarOf = (files: Array<[string, Buffer]>) => tar(...files.map(([n, d]) => file(n, d)));

/** Two layers of 40 MiB (past the inline mark), files of several chunks, one shared between them. */
const shared = prng(7, 3 * MiB + 5);
const tars = [0, 1].map((i) => tarOf([
  ['big', prng(10 + i, 20 * MiB + 123)],
  ['shared', shared],
  ...Array.from({ length: 40 }, (_, k) => [`small${k}`, prng(100 * i + k, 4096 * k + 17)] as [string, Buffer]),
  ['big2', prng(20 + i, 15 * MiB)],
]));

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-shared-pool-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const build = (i: number, out: string, extra: Record<string, unknown>) =>
  create({ type: 'tar-rafs', source: Readable.from([tars[i]!]), bootstrap: join(work, `${out}.boot`), blob: join(work, `${out}.blob`), ...extra });

/** Runs fn with a pool of 2 threads, ended afterwards. */
async function withPool(fn: (pool: ChunkPool) => Promise<void>): Promise<void> {
  const pool = new ChunkPool(2);
  try {
    await fn(pool);
  } finally {
    await pool.destroy();
  }
}

/** The bootstrap's and the blob's digests (a failed comparison of the bytes themselves prints them all). */
const bytes = async (out: string) => [sha(await readFile(join(work, `${out}.boot`))), sha(await readFile(join(work, `${out}.blob`)))];

describe('builds sharing one worker pool', () => {
  // The reference bytes: each layer built with 2 threads of its own.
  beforeAll(async () => {
    await build(0, 'alone0', { threads: 2 });
    await build(1, 'alone1', { threads: 2 });
  }, 120_000);

  it('two builds at once on a pool of 2 write the bytes each writes with 2 threads of its own, on the pool\'s threads alone', async () => {
    await withPool(async (pool) => {
      const { seen } = await watchingThreads('nydus-chunks', () => Promise.all([build(0, 'pooled0', { pool }), build(1, 'pooled1', { pool })]));
      expect(seen.size).toBe(2);
      expect(await bytes('pooled0')).toEqual(await bytes('alone0'));
      expect(await bytes('pooled1')).toEqual(await bytes('alone1'));
    });
  }, 120_000);

  it('a build that fails leaves the pool running: the next build on it works, on the same threads', async () => {
    await withPool(async (pool) => {
      // A stream that breaks after 12 MiB of the first layer: its build has tasks on the pool by then.
      const broken = new Readable({ read() {} });
      broken.push(tars[0]!.subarray(0, 12 * MiB));
      setTimeout(() => broken.destroy(new Error('connection reset')), 50);
      const first = await watchingThreads('nydus-chunks', () =>
        create({ type: 'tar-rafs', source: broken, bootstrap: join(work, 'broken.boot'), blob: join(work, 'broken.blob'), pool }).then(() => undefined, (e: Error) => e));
      expect(first.value?.message).toContain('connection reset');
      const again = await watchingThreads('nydus-chunks', () => build(1, 'after', { pool }));
      expect(await bytes('after')).toEqual(await bytes('alone1'));
      expect(again.seen.size).toBe(2);
      expect([...again.seen].every((t) => first.seen.has(t))).toBe(true);
    });
  }, 120_000);

  it('with inlineSmall, a build under 32 MiB runs on the main thread and never starts the pool', async () => {
    await withPool(async (pool) => {
      const small = tarOf([['a', prng(1, 2 * MiB)], ['b', prng(2, 300_000)]]);
      const { seen } = await watchingThreads('nydus-chunks', () =>
        create({ type: 'tar-rafs', source: Readable.from([small]), bootstrap: join(work, 'small.boot'), blob: join(work, 'small.blob'), pool, inlineSmall: true }));
      expect(seen.size).toBe(0);
      await create({ type: 'tar-rafs', source: Readable.from([small]), bootstrap: join(work, 'small-t0.boot'), blob: join(work, 'small-t0.blob'), threads: 0 });
      expect(sha(await readFile(join(work, 'small.blob')))).toBe(sha(await readFile(join(work, 'small-t0.blob'))));
    });
  }, 60_000);
});
