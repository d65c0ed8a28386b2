// `create -t tar-tarfs` against tars that claim what they do not hold: a member declaring 64 GiB
// of data in a 2 KiB tar is refused as truncated before a chunk is allocated for it, and the
// source's refusals (depth, a member under a symlink) leave nothing behind in -D.
import { describe, expect, it } from 'vitest';
import { scratch } from '../helpers/scratch.js';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { NydusError } from '../../src/errors.js';
import { END, file, header, pax, symlink, tar } from '../sources/craft.js';

const work = scratch('nydus-tarfs-hostile-');

/** Builds the bytes with tar-tarfs; returns the error and how long it took, with -D checked empty. */
async function refusal(bytes: Buffer, chunkSize = 0x1000): Promise<{ message: string; ms: number }> {
  const dir = await work.fresh('d');
  const source = `${dir}.tar`;
  await writeFile(source, bytes);
  const t0 = performance.now();
  const e = await create({ type: 'tar-tarfs', source, blobDir: dir, bootstrap: join(dir, 'boot'), chunkSize }).catch((x: unknown) => x);
  const ms = performance.now() - t0;
  expect(e).toBeInstanceOf(NydusError);
  expect((e as NydusError).code).toBe('SOURCE');
  expect((e as Error).message).not.toContain('\n');
  expect(await readdir(dir)).toEqual([]);
  return { message: (e as Error).message, ms };
}

describe('tar-tarfs of hostile tars', () => {
  it('a member claiming 2^24 chunks of data it does not hold is truncated, with no chunk allocated first', async () => {
    const size = 0x1000 * (2 ** 24 - 1);
    const before = process.memoryUsage().heapUsed;
    const { message, ms } = await refusal(Buffer.concat([header('big', { size }), Buffer.alloc(1024, 0x61)]));
    expect(message).toBe(`/big: truncated tar: the input ends 1024 bytes into the entry's ${size} bytes of data`);
    expect(ms).toBeLessThan(5000); // the old code ran for minutes; a busy CI machine needs slack
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 << 20);
  });

  it('a member under a symlink and a path deeper than DEPTH_MAX are refused', async () => {
    expect((await refusal(tar(symlink('l', '/'), file('l/x', 'x')))).message).toBe('/l/x: an earlier entry made /l a symlink, not a directory');
    expect((await refusal(tar(pax([['path', 'd/'.repeat(5000)]]), file('x')))).message).toMatch(/: 5000 levels exceeds DEPTH_MAX \(4096\)/);
    expect((await refusal(Buffer.concat([file('a', 'a'), pax([['path', 'x']]), END]))).message).toMatch(/the input ends after the pax extensions header at tar offset 1024, with no member for it$/);
  });
});
