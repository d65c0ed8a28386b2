// The pipeline's workers open and read a directory source's files themselves (issue 14): a
// file that changes between the walk and the read still fails as one user error naming it, on
// the main thread and in the pool alike, and leaves no output behind. An entry stage makes the
// change at the moment the entry passes, so there is no race to win.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { mkdirSync, symlinkSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { NydusError } from '../../src/errors.js';
import type { EntryStage, SourceEntry } from '../../src/pipeline/stage.js';
import { openImage } from '../../src/read/open.js';
import { readBackAndCompare } from './read-back.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-read-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** An entry stage that does `act` to the file behind /victim as its entry passes. */
function meddler(act: () => void): EntryStage {
  return {
    name: 'meddler',
    kind: 'entry',
    create: () => async function* (entries: AsyncIterable<SourceEntry>) {
      for await (const e of entries) {
        if (e.node.path.toString() === '/victim') act();
        yield e;
      }
    },
  };
}

async function failure(name: string, threads: number, act: (file: string) => void): Promise<NydusError> {
  const src = join(work, `${name}-${threads}`);
  const out = join(work, `${name}-${threads}-out`);
  await mkdir(src);
  await mkdir(out);
  for (let i = 0; i < 50; i++) await writeFile(join(src, `a${i}`), `file ${i}\n`.repeat(100));
  await writeFile(join(src, 'victim'), Buffer.alloc(3 << 20, 7));
  const file = join(src, 'victim');
  const err = await create({ source: src, bootstrap: join(out, 'boot'), blob: join(out, 'blob'), threads, stages: [meddler(() => act(file))] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NydusError);
  expect(await readdir(out)).toEqual([]);
  return err as NydusError;
}

describe('a file that changes after the walk fails the build with one line naming it', () => {
  for (const threads of [0, 2]) {
    it(`removed (${threads} threads)`, async () => {
      const e = await failure('removed', threads, (f) => unlinkSync(f));
      expect(e.message).toBe(`${join(work, `removed-${threads}`, 'victim')}: no such file or directory`);
      expect(e.exit).toBe(1);
    });

    it(`shrunk (${threads} threads)`, async () => {
      const e = await failure('shrunk', threads, (f) => truncateSync(f, 1 << 20));
      expect(e.message).toBe(`/victim: file shrank while reading (expected ${3 << 20} bytes)`);
      expect(e.exit).toBe(1);
    });

    it(`replaced by a directory (${threads} threads)`, async () => {
      const e = await failure('dir', threads, (f) => (unlinkSync(f), mkdirSync(f)));
      expect(e.message).toBe(`${join(work, `dir-${threads}`, 'victim')}: is a directory`);
      expect(e.exit).toBe(1);
    });

    it(`replaced by a symlink, which is not followed (${threads} threads)`, async () => {
      const e = await failure('link', threads, (f) => (unlinkSync(f), symlinkSync(join(work, `link-${threads}`, 'a1'), f)));
      expect(e.message.startsWith(`${join(work, `link-${threads}`, 'victim')}: `)).toBe(true);
      expect(e.message).toMatch(/symbolic links/);
      expect(e.exit).toBe(1);
    });
  }
});

// The directory source hands the workers a file's path when it is under 3,072 bytes; a longer one
// is read on the main thread, into the same batches. One directory, deep enough that its files
// alternate between the two, fills batches with both kinds of read (and files that span batches).
describe('a directory whose files are read by the workers and by the main thread in turn', () => {
  for (const threads of [0, 2]) {
    it(`keeps every file's bytes (${threads} threads)`, async () => {
      const src = join(work, `mixed-${threads}`);
      const out = join(work, `mixed-${threads}-out`);
      let dir = src;
      while (dir.length < 2850) dir = join(dir, 'd'.repeat(200));
      await mkdir(dir, { recursive: true });
      await mkdir(out);
      const sizes = [2_500_000, 1_200_000, 700, 3_100_000, 0, 65_537, 1 << 20, 5];
      for (let i = 0; i < sizes.length; i++) {
        // Names sort in this order: short and long alternate in the walk.
        const name = i % 2 === 0 ? `${i}s` : `${i}${'l'.repeat(254)}`;
        expect(join(dir, name).length < 3072).toBe(i % 2 === 0);
        const bytes = Buffer.alloc(sizes[i]!);
        for (let k = 0; k + 4 <= bytes.length; k += 4096) bytes.writeUInt32LE(((i << 24) ^ k) >>> 0, k);
        await writeFile(join(dir, name), bytes);
      }
      await create({ source: src, bootstrap: join(out, 'boot'), blob: join(out, 'blob'), threads });
      const rb = readBackAndCompare(openImage(join(out, 'boot')), { blob: join(out, 'blob') }, src);
      expect(rb.mismatches).toEqual([]);
      expect(rb.files).toBe(sizes.length);
      expect(rb.bytes).toBe(sizes.reduce((a, b) => a + b, 0));
    });
  }
});
