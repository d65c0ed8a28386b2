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
